// Reading typed fields out of the JSON config, with errors that name the field's path. Used by
// the parsers of config.cc and routes.cc; not part of the config's interface.
#pragma once

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace wasmlet::server::config_json {

using nlohmann::json;

inline Status Bad(const std::string& path, const std::string& problem) {
  return InvalidArgument("config " + path + ": " + problem);
}

inline std::string TypeName(const json& j) { return j.type_name(); }

// Reads an optional field of an object with the expected kind, naming its path when wrong.
inline Status ReadString(const json& obj, const char* key, const std::string& path, std::string& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) return Bad(path + "." + key, "expected a string, found " + TypeName(*it));
  out = it->get<std::string>();
  return Status::Ok();
}

inline Status ReadBool(const json& obj, const char* key, const std::string& path, bool& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_boolean()) return Bad(path + "." + key, "expected true or false, found " + TypeName(*it));
  out = it->get<bool>();
  return Status::Ok();
}

template <typename Int>
Status ReadInt(const json& obj, const char* key, const std::string& path, Int& out, int64_t min,
               int64_t max) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  int64_t value = 0;
  if (it->is_number_integer()) {
    value = it->get<int64_t>();
  } else if (it->is_string()) {  // Layotto writes some numbers as strings ("cpu": "100")
    const std::string s = it->get<std::string>();
    char* end = nullptr;
    value = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0')
      return Bad(path + "." + key, "expected a whole number, found \"" + s + "\"");
  } else {
    return Bad(path + "." + key, "expected a whole number, found " + TypeName(*it));
  }
  if (value < min || value > max) {
    return Bad(path + "." + key,
               std::to_string(value) + " is outside " + std::to_string(min) + ".." + std::to_string(max));
  }
  out = static_cast<Int>(value);
  return Status::Ok();
}

// Calls fn(element, element_path) for each element of the optional array field `key`; stops at
// the first error.
template <typename Fn>
Status ForEachElement(const json& obj, const char* key, const std::string& path, Fn fn) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return Bad(path + "." + key, "expected an array, found " + TypeName(*it));
  for (size_t i = 0; i < it->size(); ++i) {
    WASMLET_RETURN_IF_ERROR(fn((*it)[i], path + "." + key + "[" + std::to_string(i) + "]"));
  }
  return Status::Ok();
}

}  // namespace wasmlet::server::config_json
