// A Layotto-style function (`id: id_state`) that drives wasmlet's state calls from request
// headers, for the end-to-end tests. Header `store` names the store (default "orders"), `op`
// the call:
//
//   get      GetStateItem(key): 200 "value=V etag=E\n", or "absent\n".
//   save     SaveState(key, value; etag, first-write: "1", ttl: seconds): 200 "saved\n".
//   delete   DeleteState(key; etag): 200 "deleted\n".
//   bulk     GetBulkState(keys, comma-separated): 200, a line per key, "K=V@E" or "K absent".
//   tx       a StateTransaction of header `ops`: operations separated by ';', each
//            "save:KEY:VALUE[:ETAG]" or "delete:KEY[:ETAG]": 200 "committed\n".
//   counter  adds one to the number at `key` (absent: 0) with an ETag-guarded save, again on a
//            conflict (at most 100 times): 200 "N\n", the number it wrote.
//   lock     TryLock(store, key, owner, expire: seconds, default 10): 200 "taken\n" or "held\n".
//   unlock   Unlock(store, key, owner): 200 "unlocked N\n" with Layotto's result (0 success,
//            1 no such lock, 2 another owner's).
//   next-id  GetNextId(store, key): 200 "N\n".
//   secret   GetSecret(store, key): 200, a line "NAME=VALUE" per pair of its data.
//   config   GetConfigurationItems(store, keys, comma-separated): 200, a line "KEY=CONTENT" per item.
//   secrets  GetBulkSecret(store): 200, a line "SECRET: NAME=VALUE ..." per secret.
//
// A failed call answers as a real function would: 409 for kCasMismatch, 404 for kNotFound,
// 503 for kBrokenConnection, 400 for kBadArgument, else 500; the body is "status N: WHY\n"
// with the host's reason (the property wasmlet.last_error).
#include <string>
#include <vector>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

std::string Header(std::string_view name) { return GetHeader(MapType::kRequestHeaders, name).value_or(""); }

std::vector<std::string> Split(const std::string& text, char separator) {
  std::vector<std::string> pieces;
  size_t start = 0;
  for (size_t end; (end = text.find(separator, start)) != std::string::npos; start = end + 1) {
    pieces.push_back(text.substr(start, end - start));
  }
  pieces.push_back(text.substr(start));
  return pieces;
}

class Function : public StreamContext {
 public:
  using StreamContext::StreamContext;

  Action OnRequestHeaders(uint32_t, bool) override {
    store_ = Header("store").empty() ? "orders" : Header("store");
    const std::string op = Header("op");
    const std::string key = Header("key");
    if (op == "get") {
      StateItem item;
      if (!Check(GetStateItem(store_, key, &item))) return Action::kPause;
      return Answer(200, item.exists() ? "value=" + item.value + " etag=" + item.etag + "\n" : "absent\n");
    }
    if (op == "save") {
      StateSaveOptions options;
      options.etag = Header("etag");
      options.first_write = Header("first-write") == "1";
      options.ttl_seconds = static_cast<uint32_t>(std::strtoul(Header("ttl").c_str(), nullptr, 10));
      if (!Check(SaveState(store_, key, Header("value"), options))) return Action::kPause;
      return Answer(200, "saved\n");
    }
    if (op == "delete") {
      if (!Check(DeleteState(store_, key, Header("etag")))) return Action::kPause;
      return Answer(200, "deleted\n");
    }
    if (op == "bulk") {
      const std::vector<std::string> keys = Split(Header("keys"), ',');
      std::vector<StateItem> items;
      if (!Check(GetBulkState(store_, keys, &items))) return Action::kPause;
      if (items.size() != keys.size())
        return Answer(500, "bulk answered " + std::to_string(items.size()) + " items\n");
      std::string body;
      for (size_t i = 0; i < keys.size(); ++i) {
        body += items[i].exists() ? keys[i] + "=" + items[i].value + "@" + items[i].etag + "\n"
                                  : keys[i] + " absent\n";
      }
      return Answer(200, body);
    }
    if (op == "tx") {
      StateTransaction transaction;
      for (const std::string& text : Split(Header("ops"), ';')) {
        const std::vector<std::string> parts = Split(text, ':');
        if (parts[0] == "save" && parts.size() >= 3) {
          transaction.Save(parts[1], parts[2], {.etag = parts.size() > 3 ? parts[3] : ""});
        } else if (parts[0] == "delete" && parts.size() >= 2) {
          transaction.Delete(parts[1], parts.size() > 2 ? parts[2] : "");
        } else {
          return Answer(400, "cannot read the operation '" + text + "'\n");
        }
      }
      if (!Check(transaction.Commit(store_))) return Action::kPause;
      return Answer(200, "committed\n");
    }
    if (op == "counter") {
      for (int attempt = 0; attempt < 100; ++attempt) {
        StateItem item;
        if (!Check(GetStateItem(store_, key, &item))) return Action::kPause;
        const long next = (item.exists() ? std::strtol(item.value.c_str(), nullptr, 10) : 0) + 1;
        // An absent counter is created first-write: two creators cannot both win.
        const Status saved =
            SaveState(store_, key, std::to_string(next), {.etag = item.etag, .first_write = !item.exists()});
        if (saved == Status::kCasMismatch) continue;
        if (!Check(saved)) return Action::kPause;
        return Answer(200, std::to_string(next) + "\n");
      }
      return Answer(409, "gave up after 100 conflicts\n");
    }
    if (op == "lock") {
      bool taken = false;
      const uint32_t expire =
          Header("expire").empty()
              ? 10
              : static_cast<uint32_t>(std::strtoul(Header("expire").c_str(), nullptr, 10));
      if (!Check(TryLock(store_, key, Header("owner"), expire, &taken))) return Action::kPause;
      return Answer(200, taken ? "taken\n" : "held\n");
    }
    if (op == "unlock") {
      UnlockResult result = UnlockResult::kSuccess;
      if (!Check(Unlock(store_, key, Header("owner"), &result))) return Action::kPause;
      return Answer(200, "unlocked " + std::to_string(static_cast<uint32_t>(result)) + "\n");
    }
    if (op == "next-id") {
      uint64_t id = 0;
      if (!Check(GetNextId(store_, key, &id))) return Action::kPause;
      return Answer(200, std::to_string(id) + "\n");
    }
    if (op == "config") {
      Headers items;
      if (!Check(GetConfigurationItems(store_, Split(Header("keys"), ','), &items))) return Action::kPause;
      std::string lines;
      for (const auto& [name, content] : items) lines += name + "=" + content + "\n";
      return Answer(200, lines);
    }
    if (op == "secret") {
      Headers data;
      if (!Check(GetSecret(store_, key, &data))) return Action::kPause;
      std::string lines;
      for (const auto& [name, value] : data) lines += name + "=" + value + "\n";
      return Answer(200, lines);
    }
    if (op == "secrets") {
      std::vector<std::pair<std::string, Headers>> secrets;
      if (!Check(GetBulkSecret(store_, &secrets))) return Action::kPause;
      std::string lines;
      for (const auto& [secret, data] : secrets) {
        lines += secret + ":";
        for (const auto& [name, value] : data) lines += " " + name + "=" + value;
        lines += "\n";
      }
      return Answer(200, lines);
    }
    return Answer(400, "unknown op '" + op + "'\n");
  }

 private:
  // Whether `status` is kOk; otherwise answers the request with what went wrong.
  bool Check(Status status) {
    if (status == Status::kOk) return true;
    uint32_t http = 500;
    switch (status) {
      case Status::kCasMismatch: http = 409; break;
      case Status::kNotFound: http = 404; break;
      case Status::kBrokenConnection: http = 503; break;
      case Status::kBadArgument: http = 400; break;
      default: break;
    }
    const std::string why = GetProperty({"wasmlet", "last_error"}).value_or("");
    Answer(http, "status " + std::to_string(static_cast<uint32_t>(status)) + ": " + why + "\n");
    return false;
  }

  Action Answer(uint32_t status, const std::string& body) {
    SendLocalResponse(status, body);
    return Action::kPause;
  }

  std::string store_;
};

}  // namespace

WASMLET_REGISTER_PLUGIN(RootContext, Function)
WASMLET_FUNCTION_ID("id_state")
