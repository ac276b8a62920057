#include "components/pubsub/redis/redis_pubsub.h"

#include <hiredis/hiredis.h>

#include <algorithm>

namespace wasmlet::components {
namespace {

constexpr std::string_view kConsumer = "wasmlet";

// One stream entry [id, [field, value, ...]] as a message; nullopt when it is not one (an entry
// deleted since, which XCLAIM answers as nil).
std::optional<PubSubMessage> EntryOf(const redisReply& entry) {
  if (entry.type != REDIS_REPLY_ARRAY || entry.elements != 2 ||
      entry.element[0]->type != REDIS_REPLY_STRING || entry.element[1]->type != REDIS_REPLY_ARRAY)
    return std::nullopt;
  PubSubMessage message;
  message.id = std::string(ReplyText(*entry.element[0]));
  const redisReply& fields = *entry.element[1];
  for (size_t i = 0; i + 1 < fields.elements; i += 2) {
    const std::string_view name = ReplyText(*fields.element[i]);
    if (name == "data") message.data = std::string(ReplyText(*fields.element[i + 1]));
    if (name == "metadata") message.metadata = DecodePubSubMetadata(ReplyText(*fields.element[i + 1]));
  }
  return message;
}

}  // namespace

Result<std::unique_ptr<PubSubComponent>> RedisPubSub::Create(const StoreConfig& config) {
  auto limits = ReadPubSubLimits(config);
  if (!limits.ok()) return limits.status();
  auto redis = RedisClient::Create(config, "pub/sub '" + config.name + "'");
  if (!redis.ok()) return redis.status();
  // Block for at most half the command timeout, so that a quiet topic never looks like a dead
  // connection.
  const auto block = std::max(std::chrono::milliseconds(1), (*redis)->timeout() / 2);
  return std::unique_ptr<PubSubComponent>(new RedisPubSub(std::move(*redis), *limits, block, *config.clock));
}

std::string RedisPubSub::Key(std::string_view topic, std::string_view group, std::string_view id) {
  std::string key;
  key.reserve(topic.size() + group.size() + id.size() + 2);
  key.append(topic).push_back('\0');
  key.append(group).push_back('\0');
  key.append(id);
  return key;
}

Result<std::string> RedisPubSub::Publish(std::string_view topic, std::string_view data,
                                         const PubSubMetadata& metadata) {
  const std::string max_len = std::to_string(limits_.max_len);
  const std::string encoded = EncodePubSubMetadata(metadata);
  auto r = redis_->Command({"XADD", topic, "MAXLEN", "~", max_len, "*", "data", data, "metadata", encoded});
  if (!r.ok()) return r.status();
  if ((*r)->type != REDIS_REPLY_STRING)
    return redis_->Error(
        "XADD to '" + std::string(topic) +
        "': " + ((*r)->type == REDIS_REPLY_ERROR ? std::string(ReplyText(**r)) : "unexpected reply"));
  return std::string(ReplyText(**r));
}

Status RedisPubSub::EnsureGroup(std::string_view topic, std::string_view group) {
  const std::string key = Key(topic, group, "");
  {
    MutexLock lock(mutex_);
    if (groups_.count(key)) return Status::Ok();
  }
  auto r = redis_->Command({"XGROUP", "CREATE", topic, group, "0", "MKSTREAM"});
  if (!r.ok()) return r.status();
  if ((*r)->type == REDIS_REPLY_ERROR && !ReplyText(**r).starts_with("BUSYGROUP"))
    return redis_->Error("creating the group '" + std::string(group) + "' of '" + std::string(topic) +
                         "': " + std::string(ReplyText(**r)));
  MutexLock lock(mutex_);
  groups_.insert(key);
  return Status::Ok();
}

Result<std::vector<PubSubMessage>> RedisPubSub::ClaimDue(std::string_view topic, std::string_view group,
                                                         size_t max) {
  std::vector<PubSubMessage> out;
  // The group's pending messages, oldest first: [id, consumer, idle ms, deliveries].
  const std::string count = std::to_string(std::max<size_t>(max * 4, 64));
  auto pending = redis_->Command({"XPENDING", topic, group, "-", "+", count});
  if (!pending.ok()) return pending.status();
  if ((*pending)->type != REDIS_REPLY_ARRAY) return out;
  const auto now = clock_.Now();
  std::vector<std::string> due;
  std::map<std::string, uint32_t> deliveries;
  {
    MutexLock lock(mutex_);
    for (size_t i = 0; i < (*pending)->elements && due.size() < max; ++i) {
      const redisReply& row = *(*pending)->element[i];
      if (row.type != REDIS_REPLY_ARRAY || row.elements < 4) continue;
      const std::string id(ReplyText(*row.element[0]));
      const auto idle = std::chrono::milliseconds(row.element[2]->integer);
      auto at = retry_at_.find(Key(topic, group, id));
      const bool ready = at != retry_at_.end() ? now >= at->second : idle >= limits_.processing_timeout;
      if (!ready) continue;
      due.push_back(id);
      deliveries[id] = static_cast<uint32_t>(row.element[3]->integer);
      if (at != retry_at_.end()) retry_at_.erase(at);
    }
  }
  if (due.empty()) return out;
  std::vector<std::string_view> argv = {"XCLAIM", topic, group, kConsumer, "0"};
  for (const std::string& id : due) argv.push_back(id);
  auto claimed = redis_->Command(argv);
  if (!claimed.ok()) return claimed.status();
  if ((*claimed)->type != REDIS_REPLY_ARRAY) return out;
  std::set<std::string> seen;
  for (size_t i = 0; i < (*claimed)->elements; ++i) {
    auto message = EntryOf(*(*claimed)->element[i]);
    if (!message) continue;
    message->deliveries = deliveries[message->id] + 1;  // XCLAIM counted this one
    seen.insert(message->id);
    out.push_back(std::move(*message));
  }
  // Entries trimmed from the stream while pending: nothing left to deliver.
  for (const std::string& id : due) {
    if (!seen.count(id)) (void)redis_->Command({"XACK", topic, group, id});  // retried next time if it fails
  }
  return out;
}

Result<std::vector<PubSubMessage>> RedisPubSub::Fetch(std::string_view topic, std::string_view group,
                                                      size_t max, std::chrono::milliseconds wait) {
  if (Status s = EnsureGroup(topic, group); !s.ok()) return s;
  auto due = ClaimDue(topic, group, max);
  if (!due.ok() || !due->empty()) return due;
  const std::string count = std::to_string(max);
  const std::string block = std::to_string(std::clamp(wait, std::chrono::milliseconds(1), block_).count());
  auto r = redis_->Command(
      {"XREADGROUP", "GROUP", group, kConsumer, "COUNT", count, "BLOCK", block, "STREAMS", topic, ">"});
  if (!r.ok()) return r.status();
  std::vector<PubSubMessage> out;
  if ((*r)->type == REDIS_REPLY_NIL) return out;  // nothing within the wait
  if ((*r)->type == REDIS_REPLY_ERROR) {
    // The stream or group was deleted behind our back: make it again next time.
    MutexLock lock(mutex_);
    groups_.erase(Key(topic, group, ""));
    return redis_->Error("XREADGROUP of '" + std::string(topic) + "': " + std::string(ReplyText(**r)));
  }
  // [[topic, [entry, ...]]]
  if ((*r)->type != REDIS_REPLY_ARRAY || (*r)->elements == 0) return out;
  const redisReply& stream = *(*r)->element[0];
  if (stream.type != REDIS_REPLY_ARRAY || stream.elements != 2) return out;
  for (size_t i = 0; i < stream.element[1]->elements; ++i) {
    if (auto message = EntryOf(*stream.element[1]->element[i])) out.push_back(std::move(*message));
  }
  return out;
}

Status RedisPubSub::Ack(std::string_view topic, std::string_view group, std::string_view id) {
  {
    MutexLock lock(mutex_);
    retry_at_.erase(Key(topic, group, id));
  }
  auto r = redis_->Command({"XACK", topic, group, id});
  if (!r.ok()) return r.status();
  if ((*r)->type == REDIS_REPLY_ERROR) return redis_->Error("XACK: " + std::string(ReplyText(**r)));
  return Status::Ok();
}

Status RedisPubSub::Retry(std::string_view topic, std::string_view group, std::string_view id,
                          std::chrono::milliseconds after) {
  MutexLock lock(mutex_);
  retry_at_[Key(topic, group, id)] = clock_.Now() + after;
  return Status::Ok();
}

}  // namespace wasmlet::components
