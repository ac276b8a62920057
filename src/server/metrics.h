// The server's counters, exported in Prometheus text format at the admin listener's /metrics.
// Thread-safe; counting is a short critical section.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace wasmlet::server {

class Metrics {
 public:
  // The id label of requests whose `id` header names no function.
  static constexpr const char* kUnknownId = "(unknown)";

  // One finished HTTP request to function `id` (empty when no function was chosen).
  void CountRequest(const std::string& id, unsigned status, double seconds);
  // Events by function id: "traps", "deadline_kills", "reloads", "start_failures",
  // "invokes_cancelled".
  void CountEvent(const std::string& event, const std::string& id);
  void CountStateStoreError(const std::string& store);

  uint64_t requests(const std::string& id) const;
  uint64_t errors(const std::string& id) const;  // responses with status >= 500

  struct Gauge {
    std::string name;
    std::string help;
    std::vector<std::pair<std::string, double>> samples;  // (labels, value), labels like {id="x"}
  };
  // The whole exposition; `gauges` are added as they are (instances busy/idle, ...).
  std::string Prometheus(const std::vector<Gauge>& gauges) const;

  static std::string Escape(const std::string& label_value);

 private:
  static constexpr double kBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  struct Histogram {
    uint64_t counts[std::size(kBuckets)] = {};
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, unsigned>, uint64_t> requests_;   // (id, status)
  std::map<std::string, Histogram> latency_;                        // by id
  std::map<std::pair<std::string, std::string>, uint64_t> events_;  // (event, id)
  std::map<std::string, uint64_t> store_errors_;
};

}  // namespace wasmlet::server
