// Sequencers (Layotto's sequencer API): ids that strictly increase per key, across every
// caller of the store. Each type lives in its own folder and is created by its config "type"
// name (CreateSequencer). Every call is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "common/status.h"
#include "components/state/state_store.h"

namespace wasmlet::components {

class SequencerComponent {
 public:
  virtual ~SequencerComponent() = default;
  // The next id of `key`: 1 first, then each larger than any given before. Errors:
  // Unavailable when the store cannot be reached, Internal otherwise.
  virtual Result<uint64_t> NextId(std::string_view key) = 0;
};

// "redis", "embedded" (SQLite) or "in-memory"; metadata as the state store of that type.
Result<std::unique_ptr<SequencerComponent>> CreateSequencer(const StoreConfig& config);

}  // namespace wasmlet::components
