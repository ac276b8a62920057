// The format of the server's log lines: text for a person at a terminal, or one JSON object per
// line for a log shipper (Fluent Bit, Vector, Loki's promtail) to read without a parsing rule.
#pragma once

#include <string_view>

#include "common/status.h"

namespace wasmlet::cli {

// Sets the default logger's format: "text" ("[2026-12-02 08:00:00.123] [info] message") or
// "json" ({"time":"2026-12-02T08:00:00.123Z","level":"info","thread":1234,"message":"..."},
// one object per line, time in UTC). Any other name is an error that lists the two.
Status SetLogFormat(std::string_view format);

}  // namespace wasmlet::cli
