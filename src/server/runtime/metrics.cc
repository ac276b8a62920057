#include "server/runtime/metrics.h"

#include <charconv>

namespace wasmlet::server {

Metrics::Shard& Metrics::ThisThreadsShard() {
  struct Cached {
    uint64_t owner = 0;
    Shard* shard = nullptr;
  };
  thread_local Cached cached;
  if (cached.owner != id_.value()) {
    MutexLock lock(mutex_);
    shards_.push_back(std::make_unique<Shard>());
    cached = {id_.value(), shards_.back().get()};
  }
  return *cached.shard;
}

void Metrics::MergeLocked(std::map<std::pair<std::string, unsigned>, uint64_t>* requests,
                          std::map<std::string, Histogram>* latency) const {
  for (const auto& shard : shards_) {
    MutexLock lock(shard->mutex);
    if (requests) {
      for (const auto& [key, count] : shard->requests) (*requests)[key] += count;
    }
    if (latency) {
      for (const auto& [id, h] : shard->latency) {
        Histogram& sum = (*latency)[id];
        for (size_t i = 0; i < std::size(kBuckets); ++i) sum.counts[i] += h.counts[i];
        sum.count += h.count;
        sum.sum += h.sum;
      }
    }
  }
}

void Metrics::CountRequest(const std::string& id, unsigned status, double seconds) {
  Shard& shard = ThisThreadsShard();
  MutexLock lock(shard.mutex);
  shard.requests[{id, status}]++;
  Histogram& h = shard.latency[id];
  for (size_t i = 0; i < std::size(kBuckets); ++i) {
    if (seconds <= kBuckets[i]) h.counts[i]++;
  }
  h.count++;
  h.sum += seconds;
}

void Metrics::CountEvent(const std::string& event, const std::string& id) {
  MutexLock lock(mutex_);
  events_[{event, id}]++;
}

void Metrics::CountStateStoreError(const std::string& store) {
  MutexLock lock(mutex_);
  store_errors_[store]++;
}

std::map<std::string, Metrics::Traffic> Metrics::TrafficById() const {
  MutexLock lock(mutex_);
  std::map<std::pair<std::string, unsigned>, uint64_t> requests;
  std::map<std::string, Histogram> latency;
  MergeLocked(&requests, &latency);
  std::map<std::string, Traffic> out;
  for (const auto& [key, count] : requests) out[key.first].by_status[key.second] = count;
  for (const auto& [id, h] : latency) {
    Traffic& t = out[id];
    t.latency_counts.assign(std::begin(h.counts), std::end(h.counts));
    t.latency_count = h.count;
    t.latency_sum_seconds = h.sum;
  }
  for (const auto& [key, count] : events_) out[key.second].events[key.first] = count;
  return out;
}

std::string Metrics::Escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string Metrics::Prometheus(const std::vector<Gauge>& gauges) const {
  std::string out;
  auto num = [](double v) {
    // The shortest text that reads back as the same double, as Prometheus prints: 0.0005, not
    // 0.00050000000000000001.
    char number[400];  // fixed notation of any double fits
    auto end = std::to_chars(number, number + sizeof number, v, std::chars_format::fixed).ptr;
    return std::string(number, end);
  };
  MutexLock lock(mutex_);
  std::map<std::pair<std::string, unsigned>, uint64_t> all_requests;
  std::map<std::string, Histogram> all_latency;
  MergeLocked(&all_requests, &all_latency);
  out += "# HELP wasmlet_requests_total HTTP requests answered, by function id and status.\n";
  out += "# TYPE wasmlet_requests_total counter\n";
  for (const auto& [key, count] : all_requests) {
    out += "wasmlet_requests_total{id=\"" + Escape(key.first) + "\",status=\"" + std::to_string(key.second) +
           "\"} " + std::to_string(count) + "\n";
  }
  out += "# HELP wasmlet_request_duration_seconds Time from a request's arrival to its answer.\n";
  out += "# TYPE wasmlet_request_duration_seconds histogram\n";
  for (const auto& [id, h] : all_latency) {
    const std::string label = "id=\"" + Escape(id) + "\"";
    for (size_t i = 0; i < std::size(kBuckets); ++i) {
      out += "wasmlet_request_duration_seconds_bucket{" + label + ",le=\"" + num(kBuckets[i]) + "\"} " +
             std::to_string(h.counts[i]) + "\n";
    }
    out += "wasmlet_request_duration_seconds_bucket{" + label + ",le=\"+Inf\"} " + std::to_string(h.count) +
           "\n";
    out += "wasmlet_request_duration_seconds_sum{" + label + "} " + num(h.sum) + "\n";
    out += "wasmlet_request_duration_seconds_count{" + label + "} " + std::to_string(h.count) + "\n";
  }
  static const std::pair<const char*, const char*> kEvents[] = {
      {"traps", "Guest calls that trapped or exited."},
      {"deadline_kills", "Guest calls stopped at their CPU limit."},
      {"reloads", "New versions of a function's module switched in."},
      {"start_failures", "Instances that failed to start (including replacements)."},
      {"invokes_cancelled", "proxy_invoke_service calls that timed out before an instance took them."},
      {"moved_to_pool", "Functions moved off the serving loops for a request over inline_limit_ms."}};
  for (const auto& [event, help] : kEvents) {
    const std::string name = std::string("wasmlet_") + event + "_total";
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " counter\n";
    for (const auto& [key, count] : events_) {
      if (key.first == event)
        out += name + "{id=\"" + Escape(key.second) + "\"} " + std::to_string(count) + "\n";
    }
  }
  out += "# HELP wasmlet_state_store_errors_total State store calls that failed, by store.\n";
  out += "# TYPE wasmlet_state_store_errors_total counter\n";
  for (const auto& [store, count] : store_errors_) {
    out +=
        "wasmlet_state_store_errors_total{store=\"" + Escape(store) + "\"} " + std::to_string(count) + "\n";
  }
  for (const auto& gauge : gauges) {
    out += "# HELP " + gauge.name + " " + gauge.help + "\n# TYPE " + gauge.name + " gauge\n";
    for (const auto& [labels, value] : gauge.samples) out += gauge.name + labels + " " + num(value) + "\n";
  }
  return out;
}

}  // namespace wasmlet::server
