// The runtime API for functions: Layotto's extensions (proxy_get_state, proxy_invoke_service,
// ABI §7.4) and wasmlet's state, lock, sequencer, configuration, pub/sub and secret calls
// (docs/proxy-wasm-abi.md §11). Each checks every guest pointer before use; a failed call is
// logged and kept for the stream's wasmlet.last_error.
#include <algorithm>
#include <cctype>
#include <chrono>

#include "abi/host/host_support.h"
#include "common/text.h"

namespace wasmlet::abi {
namespace {

// ---- Layotto extensions (ABI §7.4) -------------------------------------------------------------

// A Layotto host call that failed: logged, kept for the stream's wasmlet.last_error property
// (so a function can say why in its answer), and INTERNAL_FAILURE for the guest.
WasmResult LayottoCallFailed(PluginVm& vm, const std::string& message) {
  vm.Log(LogLevel::kError, message);
  if (PluginVm::Stream* stream = vm.effective_stream()) stream->last_host_error = message;
  return WasmResult::kInternalFailure;
}

constexpr size_t kMaxStateKeyBytes = 64 << 10;
constexpr uint32_t kStateFirstWrite = 1;  // proxy_save_state's options: bit 0

// NotFound when the function's plugin item does not give it `store` (allowed_stores).
Status StoreAllowed(const PluginVm& vm, std::string_view store) {
  const auto& allowed = vm.spec().allowed_stores;
  if (!allowed || std::find(allowed->begin(), allowed->end(), store) != allowed->end()) return Status::Ok();
  std::string names;
  for (const std::string& name : *allowed) names += (names.empty() ? "" : ", ") + name;
  return NotFound("function '" + vm.spec().name + "' may not use the store '" + Printable(store, 64) +
                  "' (its allowed_stores: " + (names.empty() ? "none" : names) + ")");
}

R GetState(PluginVm& vm, uint32_t store_ptr, uint32_t store_size, uint32_t key_ptr, uint32_t key_size,
           uint32_t value_ptr_out, uint32_t value_size_out) {
  auto store = vm.Read(store_ptr, store_size);
  auto key = vm.Read(key_ptr, key_size);
  if (!store || !key) return kBadMemory;
  if (!vm.InBounds(value_ptr_out, 4) || !vm.InBounds(value_size_out, 4)) return kBadMemory;
  const std::string call = "proxy_get_state('" + Printable(*store, 64) + "', '" + Printable(*key, 64) + "')";
  if (store->size() > kMaxStateKeyBytes || key->size() > kMaxStateKeyBytes)
    return LayottoCallFailed(vm, call + ": a store name or key over 64 KiB");
  if (!vm.services().state) return LayottoCallFailed(vm, call + ": no state stores are configured");
  // Layotto's call answers only OK or INTERNAL_FAILURE, and so it does here for a store the
  // function may not use.
  if (Status allowed = StoreAllowed(vm, *store); !allowed.ok())
    return LayottoCallFailed(vm, call + ": " + allowed.message());
  auto value = vm.services().state->GetState(*store, *key);
  if (!value.ok()) return LayottoCallFailed(vm, call + ": " + value.status().message());
  return vm.ReturnBytes(*value, value_ptr_out, value_size_out);
}

// ---- wasmlet's state calls (docs/proxy-wasm-abi.md §11.5) ----------------------------------------

// The status a state call answers for a store's error, after logging it and keeping it as
// wasmlet.last_error.
WasmResult StateCallFailed(PluginVm& vm, const std::string& call, const Status& error) {
  const std::string message = call + ": " + error.message();
  if (PluginVm::Stream* stream = vm.effective_stream()) stream->last_host_error = message;
  switch (error.code()) {
    case StatusCode::kFailedPrecondition:  // the guest's condition: its own business, not an error
      vm.Log(LogLevel::kDebug, message);
      return WasmResult::kCasMismatch;
    case StatusCode::kNotFound: vm.Log(LogLevel::kWarn, message); return WasmResult::kNotFound;
    case StatusCode::kInvalidArgument: vm.Log(LogLevel::kWarn, message); return WasmResult::kBadArgument;
    case StatusCode::kUnavailable: vm.Log(LogLevel::kError, message); return WasmResult::kBrokenConnection;
    default: vm.Log(LogLevel::kError, message); return WasmResult::kInternalFailure;
  }
}

// The store's name and one key, read and checked; nullopt after answering `*refused`.
struct StateTarget {
  std::string store;
  std::string key;
};
std::optional<StateTarget> ReadStateTarget(PluginVm& vm, const char* name, uint32_t store_ptr,
                                           uint32_t store_size, uint32_t key_ptr, uint32_t key_size,
                                           WasmResult* refused, std::string* call) {
  auto store = vm.Read(store_ptr, store_size);
  auto key = vm.Read(key_ptr, key_size);
  if (!store || !key) {
    *refused = kBadMemory;
    return std::nullopt;
  }
  *call = std::string(name) + "('" + Printable(*store, 64) + "', '" + Printable(*key, 64) + "')";
  if (!vm.services().state) {
    *refused = StateCallFailed(vm, *call, Internal("no state stores are configured"));
    return std::nullopt;
  }
  if (store->size() > kMaxStateKeyBytes || key->size() > kMaxStateKeyBytes || key->empty()) {
    *refused = StateCallFailed(vm, *call,
                               InvalidArgument("the key is empty, or it or the store name is over 64 KiB"));
    return std::nullopt;
  }
  if (Status allowed = StoreAllowed(vm, *store); !allowed.ok()) {
    *refused = StateCallFailed(vm, *call, allowed);
    return std::nullopt;
  }
  return StateTarget{std::move(*store), std::move(*key)};
}

R GetStateItem(PluginVm& vm, uint32_t store_ptr, uint32_t store_size, uint32_t key_ptr, uint32_t key_size,
               uint32_t value_ptr_out, uint32_t value_size_out, uint32_t etag_ptr_out,
               uint32_t etag_size_out) {
  for (uint32_t out : {value_ptr_out, value_size_out, etag_ptr_out, etag_size_out}) {
    if (!vm.InBounds(out, 4)) return kBadMemory;
  }
  WasmResult refused = kOk;
  std::string call;
  auto target =
      ReadStateTarget(vm, "proxy_get_state_item", store_ptr, store_size, key_ptr, key_size, &refused, &call);
  if (!target) return refused;
  auto items = vm.services().state->GetItems(target->store, {target->key});
  if (!items.ok()) return StateCallFailed(vm, call, items.status());
  const std::optional<StateStore::Item>& item = items->at(0);
  // No item: both empty (an ETag never is).
  auto value = vm.ReturnBytes(item ? std::string_view(item->value) : std::string_view(), value_ptr_out,
                              value_size_out);
  if (!value.ok() || *value != kOk) return value;
  return vm.ReturnBytes(item ? std::string_view(item->etag) : std::string_view(), etag_ptr_out,
                        etag_size_out);
}

R SaveState(PluginVm& vm, uint32_t store_ptr, uint32_t store_size, uint32_t key_ptr, uint32_t key_size,
            uint32_t value_ptr, uint32_t value_size, uint32_t etag_ptr, uint32_t etag_size, uint32_t options,
            uint32_t ttl_seconds) {
  auto value = vm.Read(value_ptr, value_size);
  auto etag = vm.Read(etag_ptr, etag_size);
  if (!value || !etag) return kBadMemory;
  WasmResult refused = kOk;
  std::string call;
  auto target =
      ReadStateTarget(vm, "proxy_save_state", store_ptr, store_size, key_ptr, key_size, &refused, &call);
  if (!target) return refused;
  if (options & ~kStateFirstWrite)
    return StateCallFailed(vm, call, InvalidArgument("unknown option bits " + std::to_string(options)));
  if (value->size() > vm.limits().buffer_bytes)
    return vm.RefuseAtLimit("buffer_bytes", vm.limits().buffer_bytes);
  StateStore::Write write;
  write.key = std::move(target->key);
  write.value = std::move(*value);
  if (!etag->empty()) write.etag = std::move(*etag);
  write.first_write = (options & kStateFirstWrite) != 0;
  write.ttl = std::chrono::seconds(ttl_seconds);
  Status applied = vm.services().state->Apply(target->store, {write});
  return applied.ok() ? kOk : StateCallFailed(vm, call, applied);
}

R DeleteState(PluginVm& vm, uint32_t store_ptr, uint32_t store_size, uint32_t key_ptr, uint32_t key_size,
              uint32_t etag_ptr, uint32_t etag_size) {
  auto etag = vm.Read(etag_ptr, etag_size);
  if (!etag) return kBadMemory;
  WasmResult refused = kOk;
  std::string call;
  auto target =
      ReadStateTarget(vm, "proxy_delete_state", store_ptr, store_size, key_ptr, key_size, &refused, &call);
  if (!target) return refused;
  StateStore::Write write;
  write.remove = true;
  write.key = std::move(target->key);
  if (!etag->empty()) write.etag = std::move(*etag);
  Status applied = vm.services().state->Apply(target->store, {write});
  return applied.ok() ? kOk : StateCallFailed(vm, call, applied);
}

// The keys of a bulk read, or the operations of a transaction, in the pairs format; nullopt
// after answering `*refused`.
std::optional<HeaderList> ReadPairsList(PluginVm& vm, const std::string& call, bool available,
                                        const char* kind, uint32_t ptr, uint32_t size, WasmResult* refused) {
  if (!available) {
    *refused = StateCallFailed(vm, call, Internal(std::string("no ") + kind + " are configured"));
    return std::nullopt;
  }
  auto bytes = vm.Read(ptr, size);
  if (!bytes) {
    *refused = kBadMemory;
    return std::nullopt;
  }
  if (bytes->size() > vm.limits().buffer_bytes) {
    *refused = vm.RefuseAtLimit("buffer_bytes", vm.limits().buffer_bytes);
    return std::nullopt;
  }
  auto pairs = ParsePairs({reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()});
  if (!pairs) {
    *refused = StateCallFailed(vm, call, InvalidArgument("the list is not in the pairs format"));
    return std::nullopt;
  }
  for (const auto& [name, value] : *pairs) {
    if (name.size() > kMaxStateKeyBytes) {
      *refused = StateCallFailed(vm, call, InvalidArgument("a key is over 64 KiB"));
      return std::nullopt;
    }
  }
  return pairs;
}

std::optional<HeaderList> ReadStatePairs(PluginVm& vm, const std::string& call, uint32_t ptr, uint32_t size,
                                         WasmResult* refused) {
  return ReadPairsList(vm, call, vm.services().state != nullptr, "state stores", ptr, size, refused);
}

// The names of a list of keys (its values are ignored); none may be empty.
Result<std::vector<std::string>> KeysOf(HeaderList pairs) {
  std::vector<std::string> keys;
  keys.reserve(pairs.size());
  for (auto& [key, ignored] : pairs) {
    if (key.empty()) return InvalidArgument("a key is empty");
    keys.push_back(std::move(key));
  }
  return keys;
}

R GetBulkState(PluginVm& vm, uint32_t store_ptr, uint32_t store_size, uint32_t keys_ptr, uint32_t keys_size,
               uint32_t items_ptr_out, uint32_t items_size_out) {
  auto store = vm.Read(store_ptr, store_size);
  if (!store) return kBadMemory;
  if (!vm.InBounds(items_ptr_out, 4) || !vm.InBounds(items_size_out, 4)) return kBadMemory;
  const std::string call = "proxy_get_bulk_state('" + Printable(*store, 64) + "')";
  WasmResult refused = kOk;
  auto pairs = ReadStatePairs(vm, call, keys_ptr, keys_size, &refused);
  if (!pairs) return refused;
  if (Status allowed = StoreAllowed(vm, *store); !allowed.ok()) return StateCallFailed(vm, call, allowed);
  auto keys = KeysOf(std::move(*pairs));
  if (!keys.ok()) return StateCallFailed(vm, call, keys.status());
  auto items = vm.services().state->GetItems(*store, *keys);
  if (!items.ok()) return StateCallFailed(vm, call, items.status());
  // One pair per key, in order: (ETag, value), or two empty strings when there is no item.
  HeaderMap answer;
  answer.Reserve(items->size());
  uint64_t bytes = 0;
  for (const auto& item : *items) {
    if (item) {
      bytes += item->etag.size() + item->value.size();
      answer.Add(item->etag, item->value);
    } else {
      answer.Add("", "");
    }
  }
  if (bytes > vm.limits().buffer_bytes) return vm.RefuseAtLimit("buffer_bytes", vm.limits().buffer_bytes);
  return vm.ReturnBytes(answer.Serialize(), items_ptr_out, items_size_out);
}

// One operation of a transaction from its two pairs: ("upsert" or "delete", then options such
// as "first-write" and "ttl=60", space-separated; the key), and (the ETag, or empty; the value).
Result<StateStore::Write> ParseStateOperation(std::string_view kind, std::string key, std::string etag,
                                              std::string value) {
  StateStore::Write write;
  bool first = true;
  while (!kind.empty()) {
    const size_t space = kind.find(' ');
    const std::string_view word = kind.substr(0, space);
    kind = space == std::string_view::npos ? std::string_view() : kind.substr(space + 1);
    if (word.empty()) continue;
    if (first) {
      first = false;
      if (word == "delete") {
        write.remove = true;
      } else if (word != "upsert") {
        return InvalidArgument("an operation is '" + Printable(word, 32) + "'; use 'upsert' or 'delete'");
      }
    } else if (word == "first-write" && !write.remove) {
      write.first_write = true;
    } else if (word.starts_with("ttl=") && !write.remove && word.size() > 4 && word.size() <= 14 &&
               word.substr(4).find_first_not_of("0123456789") == std::string_view::npos) {
      write.ttl = std::chrono::seconds(std::stoull(std::string(word.substr(4))));
    } else {
      return InvalidArgument("unknown option '" + Printable(word, 32) + "' of an operation");
    }
  }
  if (first) return InvalidArgument("an operation has no kind; use 'upsert' or 'delete'");
  if (key.empty()) return InvalidArgument("an operation has an empty key");
  write.key = std::move(key);
  if (!etag.empty()) write.etag = std::move(etag);
  if (!write.remove) write.value = std::move(value);
  return write;
}

R ExecuteStateTransaction(PluginVm& vm, uint32_t store_ptr, uint32_t store_size, uint32_t ops_ptr,
                          uint32_t ops_size) {
  auto store = vm.Read(store_ptr, store_size);
  if (!store) return kBadMemory;
  const std::string call = "proxy_execute_state_transaction('" + Printable(*store, 64) + "')";
  WasmResult refused = kOk;
  auto pairs = ReadStatePairs(vm, call, ops_ptr, ops_size, &refused);
  if (!pairs) return refused;
  if (Status allowed = StoreAllowed(vm, *store); !allowed.ok()) return StateCallFailed(vm, call, allowed);
  if (pairs->size() % 2 != 0)
    return StateCallFailed(vm, call,
                           InvalidArgument("the list holds an odd number of pairs; an operation is two"));
  std::vector<StateStore::Write> writes;
  writes.reserve(pairs->size() / 2);
  for (size_t i = 0; i < pairs->size(); i += 2) {
    auto& [kind, key] = (*pairs)[i];
    auto& [etag, value] = (*pairs)[i + 1];
    auto write = ParseStateOperation(kind, std::move(key), std::move(etag), std::move(value));
    if (!write.ok()) {
      return StateCallFailed(
          vm, call,
          InvalidArgument("operation " + std::to_string(i / 2 + 1) + ": " + write.status().message()));
    }
    writes.push_back(std::move(*write));
  }
  Status applied = vm.services().state->Apply(*store, writes);
  return applied.ok() ? kOk : StateCallFailed(vm, call, applied);
}

// ---- wasmlet's lock and sequencer calls (docs/proxy-wasm-abi.md §11.6) ------------------------

// The store's name and two names (resource and owner, or key), read and checked; nullopt after
// answering `*refused`.
struct NamedCall {
  std::string store;
  std::string first;
  std::string second;
  std::string call;  // for messages
};
std::optional<NamedCall> ReadNamedCall(PluginVm& vm, const char* name, bool available, uint32_t store_ptr,
                                       uint32_t store_size, uint32_t first_ptr, uint32_t first_size,
                                       uint32_t second_ptr, uint32_t second_size, WasmResult* refused) {
  auto store = vm.Read(store_ptr, store_size);
  auto first = vm.Read(first_ptr, first_size);
  auto second = second_size == 0 ? std::optional<std::string>("") : vm.Read(second_ptr, second_size);
  if (!store || !first || !second) {
    *refused = kBadMemory;
    return std::nullopt;
  }
  NamedCall named{std::move(*store), std::move(*first), std::move(*second), ""};
  named.call =
      std::string(name) + "('" + Printable(named.store, 64) + "', '" + Printable(named.first, 64) + "')";
  Status bad;
  if (!available) {
    bad = Internal("no such stores are configured");
  } else if (named.first.empty() || named.first.size() > kMaxStateKeyBytes ||
             named.store.size() > kMaxStateKeyBytes || named.second.size() > kMaxStateKeyBytes) {
    bad = InvalidArgument("a name is empty or over 64 KiB");
  } else {
    bad = StoreAllowed(vm, named.store);
  }
  if (!bad.ok()) {
    *refused = StateCallFailed(vm, named.call, bad);
    return std::nullopt;
  }
  return named;
}

R TryLock(PluginVm& vm, uint32_t store_ptr, uint32_t store_size, uint32_t resource_ptr,
          uint32_t resource_size, uint32_t owner_ptr, uint32_t owner_size, uint32_t expire_seconds,
          uint32_t taken_out) {
  if (!vm.InBounds(taken_out, 4)) return kBadMemory;
  WasmResult refused = kOk;
  auto named = ReadNamedCall(vm, "proxy_try_lock", vm.services().locks != nullptr, store_ptr, store_size,
                             resource_ptr, resource_size, owner_ptr, owner_size, &refused);
  if (!named) return refused;
  if (named->second.empty()) return StateCallFailed(vm, named->call, InvalidArgument("the owner is empty"));
  if (expire_seconds == 0)
    return StateCallFailed(vm, named->call,
                           InvalidArgument("the expiry is 0; a lock must expire (seconds > 0)"));
  auto taken = vm.services().locks->TryLock(named->store, named->first, named->second,
                                            std::chrono::seconds(expire_seconds));
  if (!taken.ok()) return StateCallFailed(vm, named->call, taken.status());
  if (!vm.WriteU32(taken_out, *taken ? 1 : 0)) return kBadMemory;
  return kOk;
}

R Unlock(PluginVm& vm, uint32_t store_ptr, uint32_t store_size, uint32_t resource_ptr, uint32_t resource_size,
         uint32_t owner_ptr, uint32_t owner_size, uint32_t result_out) {
  if (!vm.InBounds(result_out, 4)) return kBadMemory;
  WasmResult refused = kOk;
  auto named = ReadNamedCall(vm, "proxy_unlock", vm.services().locks != nullptr, store_ptr, store_size,
                             resource_ptr, resource_size, owner_ptr, owner_size, &refused);
  if (!named) return refused;
  if (named->second.empty()) return StateCallFailed(vm, named->call, InvalidArgument("the owner is empty"));
  auto result = vm.services().locks->Unlock(named->store, named->first, named->second);
  if (!result.ok()) return StateCallFailed(vm, named->call, result.status());
  if (!vm.WriteU32(result_out, static_cast<uint32_t>(*result))) return kBadMemory;
  return kOk;
}

R GetNextId(PluginVm& vm, uint32_t store_ptr, uint32_t store_size, uint32_t key_ptr, uint32_t key_size,
            uint32_t id_out) {
  if (!vm.InBounds(id_out, 8)) return kBadMemory;
  WasmResult refused = kOk;
  auto named = ReadNamedCall(vm, "proxy_get_next_id", vm.services().sequencers != nullptr, store_ptr,
                             store_size, key_ptr, key_size, 0, 0, &refused);
  if (!named) return refused;
  auto id = vm.services().sequencers->NextId(named->store, named->first);
  if (!id.ok()) return StateCallFailed(vm, named->call, id.status());
  if (!vm.WriteU64(id_out, *id)) return kBadMemory;
  return kOk;
}

// ---- wasmlet's configuration call (docs/proxy-wasm-abi.md §11.8) ------------------------------

R GetConfigurationItems(PluginVm& vm, uint32_t store_ptr, uint32_t store_size, uint32_t keys_ptr,
                        uint32_t keys_size, uint32_t items_ptr_out, uint32_t items_size_out) {
  auto store = vm.Read(store_ptr, store_size);
  if (!store) return kBadMemory;
  if (!vm.InBounds(items_ptr_out, 4) || !vm.InBounds(items_size_out, 4)) return kBadMemory;
  const std::string call = "proxy_get_configuration_items('" + Printable(*store, 64) + "')";
  WasmResult refused = kOk;
  auto pairs = ReadPairsList(vm, call, vm.services().configuration != nullptr, "configuration stores",
                             keys_ptr, keys_size, &refused);
  if (!pairs) return refused;
  if (Status allowed = StoreAllowed(vm, *store); !allowed.ok()) return StateCallFailed(vm, call, allowed);
  auto keys = KeysOf(std::move(*pairs));
  if (!keys.ok()) return StateCallFailed(vm, call, keys.status());
  if (keys->empty()) return StateCallFailed(vm, call, InvalidArgument("no keys asked"));
  auto items = vm.services().configuration->Get(*store, *keys);
  if (!items.ok()) return StateCallFailed(vm, call, items.status());
  if (PairsSize(*items) > vm.limits().buffer_bytes)
    return vm.RefuseAtLimit("buffer_bytes", vm.limits().buffer_bytes);
  return vm.ReturnBytes(SerializePairs(*items), items_ptr_out, items_size_out);
}

// ---- wasmlet's pub/sub call (docs/proxy-wasm-abi.md §11.9) ------------------------------------

R PublishEvent(PluginVm& vm, uint32_t pubsub_ptr, uint32_t pubsub_size, uint32_t topic_ptr,
               uint32_t topic_size, uint32_t data_ptr, uint32_t data_size, uint32_t metadata_ptr,
               uint32_t metadata_size) {
  WasmResult refused = kOk;
  auto named = ReadNamedCall(vm, "proxy_publish_event", vm.services().publisher != nullptr, pubsub_ptr,
                             pubsub_size, topic_ptr, topic_size, 0, 0, &refused);
  if (!named) return refused;
  if (data_size > vm.limits().buffer_bytes) return vm.RefuseAtLimit("buffer_bytes", vm.limits().buffer_bytes);
  auto data = vm.Read(data_ptr, data_size);
  auto metadata = vm.Read(metadata_ptr, metadata_size);
  if (!data || !metadata) return kBadMemory;
  auto pairs = ParsePairs({reinterpret_cast<const uint8_t*>(metadata->data()), metadata->size()});
  if (!pairs)
    return StateCallFailed(vm, named->call, InvalidArgument("the metadata is not a map in the pairs format"));
  auto published = vm.services().publisher->Publish(named->store, named->first, *data, *pairs);
  if (!published.ok()) return StateCallFailed(vm, named->call, published.status());
  return kOk;
}

// ---- wasmlet's secret calls (docs/proxy-wasm-abi.md §11.7) ---------------------------------------

R GetSecret(PluginVm& vm, uint32_t store_ptr, uint32_t store_size, uint32_t name_ptr, uint32_t name_size,
            uint32_t data_ptr_out, uint32_t data_size_out) {
  if (!vm.InBounds(data_ptr_out, 4) || !vm.InBounds(data_size_out, 4)) return kBadMemory;
  WasmResult refused = kOk;
  auto named = ReadNamedCall(vm, "proxy_get_secret", vm.services().secrets != nullptr, store_ptr, store_size,
                             name_ptr, name_size, 0, 0, &refused);
  if (!named) return refused;
  auto data = vm.services().secrets->Get(named->store, named->first);
  if (!data.ok()) return StateCallFailed(vm, named->call, data.status());
  uint64_t bytes = 0;
  for (const auto& [key, value] : *data) bytes += key.size() + value.size();
  if (bytes > vm.limits().buffer_bytes) return vm.RefuseAtLimit("buffer_bytes", vm.limits().buffer_bytes);
  return vm.ReturnBytes(SerializePairs(*data), data_ptr_out, data_size_out);
}

R GetBulkSecret(PluginVm& vm, uint32_t store_ptr, uint32_t store_size, uint32_t data_ptr_out,
                uint32_t data_size_out) {
  auto store = vm.Read(store_ptr, store_size);
  if (!store) return kBadMemory;
  if (!vm.InBounds(data_ptr_out, 4) || !vm.InBounds(data_size_out, 4)) return kBadMemory;
  const std::string call = "proxy_get_bulk_secret('" + Printable(*store, 64) + "')";
  Status bad;
  if (!vm.services().secrets) {
    bad = Internal("no secret stores are configured");
  } else if (store->size() > kMaxStateKeyBytes) {
    bad = InvalidArgument("the store's name is over 64 KiB");
  } else {
    bad = StoreAllowed(vm, *store);
  }
  if (!bad.ok()) return StateCallFailed(vm, call, bad);
  auto all = vm.services().secrets->GetAll(*store);
  if (!all.ok()) return StateCallFailed(vm, call, all.status());
  // One pair per secret: its name, and its data as a map in the pairs format.
  HeaderList answer;
  answer.reserve(all->size());
  uint64_t bytes = 0;
  for (auto& [name, data] : *all) {
    std::string serialized = SerializePairs(data);
    bytes += name.size() + serialized.size();
    if (bytes > vm.limits().buffer_bytes) return vm.RefuseAtLimit("buffer_bytes", vm.limits().buffer_bytes);
    answer.emplace_back(std::move(name), std::move(serialized));
  }
  return vm.ReturnBytes(SerializePairs(answer), data_ptr_out, data_size_out);
}

R InvokeService(PluginVm& vm, uint32_t id_ptr, uint32_t id_size, uint32_t method_ptr, uint32_t method_size,
                uint32_t param_ptr, uint32_t param_size, uint32_t value_ptr_out, uint32_t value_size_out) {
  auto id = vm.Read(id_ptr, id_size);
  auto method = vm.Read(method_ptr, method_size);
  auto param = vm.Read(param_ptr, param_size);
  if (!id || !method || !param) return kBadMemory;
  if (!vm.InBounds(value_ptr_out, 4) || !vm.InBounds(value_size_out, 4)) return kBadMemory;
  const std::string call = "proxy_invoke_service('" + Printable(*id, 64) + "')";
  if (!vm.services().invoker) return LayottoCallFailed(vm, call + ": no function invoker is configured");
  auto result = vm.services().invoker->Invoke({*id, *method, *param, vm.route_id()});
  if (!result.ok()) return LayottoCallFailed(vm, call + ": " + result.status().message());
  return vm.ReturnBytes(*result, value_ptr_out, value_size_out);
}
}  // namespace

void AddRuntimeApiCalls(engine::HostFunctions& h) {
  AddHostFunction<PublishEvent>(h, "env", "proxy_publish_event");
  AddHostFunction<GetConfigurationItems>(h, "env", "proxy_get_configuration_items");
  AddHostFunction<GetState>(h, "env", "proxy_get_state");
  AddHostFunction<GetStateItem>(h, "env", "proxy_get_state_item");
  AddHostFunction<GetBulkState>(h, "env", "proxy_get_bulk_state");
  AddHostFunction<SaveState>(h, "env", "proxy_save_state");
  AddHostFunction<DeleteState>(h, "env", "proxy_delete_state");
  AddHostFunction<ExecuteStateTransaction>(h, "env", "proxy_execute_state_transaction");
  AddHostFunction<TryLock>(h, "env", "proxy_try_lock");
  AddHostFunction<Unlock>(h, "env", "proxy_unlock");
  AddHostFunction<GetNextId>(h, "env", "proxy_get_next_id");
  AddHostFunction<GetSecret>(h, "env", "proxy_get_secret");
  AddHostFunction<GetBulkSecret>(h, "env", "proxy_get_bulk_secret");
  AddHostFunction<InvokeService>(h, "env", "proxy_invoke_service");
}

}  // namespace wasmlet::abi
