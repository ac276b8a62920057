#include "cli/log_format.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <memory>
#include <string>

#include "common/text.h"

namespace wasmlet::cli {
namespace {

// One JSON object per line. The message goes through ToJson: it may hold text from a request
// or a guest that is not valid UTF-8, and a log line must never be what aborts the process.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
    const std::time_t t = seconds.count();
    std::tm utc{};
    gmtime_r(&t, &utc);
    char time[40];
    const size_t n = std::strftime(time, sizeof time, "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(time + n, sizeof time - n, ".%03dZ", static_cast<int>(millis.count()));
    const auto level = spdlog::level::to_string_view(msg.level);
    std::string line = R"({"time":")" + std::string(time) + R"(","level":")" +
                       std::string(level.data(), level.size()) + R"(","thread":)" +
                       std::to_string(msg.thread_id) + R"(,"message":)" +
                       ToJson(std::string(msg.payload.data(), msg.payload.size())) + "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

Status SetLogFormat(std::string_view format) {
  if (format == "text") return Status::Ok();  // spdlog's default pattern
  if (format != "json")
    return InvalidArgument("unknown log format '" + Printable(format, 32) + "' (use text or json)");
  // Where the default logger writes (stdout), without its colour codes.
  auto logger = std::make_shared<spdlog::logger>("", std::make_shared<spdlog::sinks::stdout_sink_mt>());
  logger->set_formatter(std::make_unique<JsonFormatter>());
  logger->set_level(spdlog::default_logger()->level());
  spdlog::set_default_logger(std::move(logger));
  return Status::Ok();
}

}  // namespace wasmlet::cli
