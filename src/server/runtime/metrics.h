// The server's counters, exported in Prometheus text format at the admin listener's /metrics.
// Thread-safe. Requests are counted in a shard of the calling thread (each serving loop has its
// own, behind a lock only a scrape ever contends for); a scrape adds the shards up.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "server/runtime/unique_id.h"

namespace wasmlet::server {

class Metrics {
 public:
  // The id label of requests whose `id` header names no function.
  static constexpr const char* kUnknownId = "(unknown)";

  // One finished HTTP request to function `id` (empty when no function was chosen).
  void CountRequest(const std::string& id, unsigned status, double seconds) EXCLUDES(mutex_);
  // Events by function id: "traps", "deadline_kills", "reloads", "start_failures",
  // "invokes_cancelled", "moved_to_pool".
  void CountEvent(const std::string& event, const std::string& id) EXCLUDES(mutex_);
  void CountStateStoreError(const std::string& store) EXCLUDES(mutex_);

  // Everything counted for one function id, since start: what a dashboard turns into rates.
  struct Traffic {
    std::map<unsigned, uint64_t> by_status;
    std::vector<uint64_t> latency_counts;  // cumulative, one per bucket of LatencyBuckets()
    uint64_t latency_count = 0;
    double latency_sum_seconds = 0;
    std::map<std::string, uint64_t> events;  // "traps", "deadline_kills", ... (see CountEvent)
  };
  std::map<std::string, Traffic> TrafficById() const EXCLUDES(mutex_);
  // The latency histogram's upper bounds, in seconds (the last bucket, +Inf, is the count).
  static std::vector<double> LatencyBuckets() { return {std::begin(kBuckets), std::end(kBuckets)}; }

  struct Gauge {
    std::string name;
    std::string help;
    std::vector<std::pair<std::string, double>> samples;  // (labels, value), labels like {id="x"}
  };
  // The whole exposition; `gauges` are added as they are (instances busy/idle, ...).
  std::string Prometheus(const std::vector<Gauge>& gauges) const EXCLUDES(mutex_);

  static std::string Escape(const std::string& label_value);

 private:
  static constexpr double kBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  struct Histogram {
    uint64_t counts[std::size(kBuckets)] = {};
    uint64_t count = 0;
    double sum = 0;
  };
  struct Shard {
    Mutex mutex;
    std::map<std::pair<std::string, unsigned>, uint64_t> requests GUARDED_BY(mutex);  // (id, status)
    std::map<std::string, Histogram> latency GUARDED_BY(mutex);                       // by id
  };
  Shard& ThisThreadsShard() EXCLUDES(mutex_);
  // Every shard added up.
  void MergeLocked(std::map<std::pair<std::string, unsigned>, uint64_t>* requests,
                   std::map<std::string, Histogram>* latency) const REQUIRES(mutex_);

  const UniqueId id_;  // tells a thread's cached shard from another Metrics'
  mutable Mutex mutex_;
  std::vector<std::unique_ptr<Shard>> shards_ GUARDED_BY(mutex_);
  std::map<std::pair<std::string, std::string>, uint64_t> events_ GUARDED_BY(mutex_);  // (event, id)
  std::map<std::string, uint64_t> store_errors_ GUARDED_BY(mutex_);
};

}  // namespace wasmlet::server
