// Sequencers in the embedded SQLite file (table `sequences`), shared by every process that
// opens it.
#pragma once

#include <memory>

#include "components/embedded/sqlite_file.h"
#include "components/sequencer/sequencer.h"

namespace wasmlet::components {

class EmbeddedSequencer : public SequencerComponent {
 public:
  static Result<std::unique_ptr<SequencerComponent>> Create(const StoreConfig& config);
  Result<uint64_t> NextId(std::string_view key) override;

 private:
  EmbeddedSequencer(std::string store, std::unique_ptr<SqliteFile> file)
      : store_(std::move(store)), file_(std::move(file)) {}
  std::string store_;
  std::unique_ptr<SqliteFile> file_;
};

}  // namespace wasmlet::components
