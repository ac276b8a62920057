// What every call of the runtime API checks first: that it names a component the config has
// (InvalidArgument listing those there are, otherwise) and that a required field is not empty.
// Shared by the files of RuntimeService (runtime_service.cc, runtime_streams.cc,
// runtime_files.cc).
#pragma once

#include <string>

#include "common/status.h"
#include "common/text.h"

namespace wasmlet::server {

template <typename Map>
std::string Names(const Map& components) {
  std::string names;
  for (const auto& [name, component] : components) names += (names.empty() ? "" : ", ") + name;
  return names.empty() ? "none" : names;
}

// `name` is a component of `components` (of kind `kind`, named by the request's `field`):
// InvalidArgument naming what there is otherwise.
template <typename Map>
Status Known(const Map& components, const std::string& name, const char* kind, const char* field) {
  if (name.empty())
    return InvalidArgument(std::string(field) + " is empty: name a " + kind + " of the config (it has: " +
                           Names(components) + ")");
  if (components.count(name)) return Status::Ok();
  return InvalidArgument("no " + std::string(kind) + " named '" + Printable(name, 64) +
                         "' (the config has: " + Names(components) + ")");
}

inline Status Required(const std::string& value, const char* field) {
  if (value.empty()) return InvalidArgument(std::string(field) + " is empty");
  return Status::Ok();
}

// Dapr's and Layotto's "ttlInSeconds" metadata: seconds until the item expires; -1 or absent:

}  // namespace wasmlet::server
