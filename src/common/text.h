// Text that arrives from outside (a request, a guest, a file name) and goes into JSON or a log
// line. Such text may be any bytes; these helpers make it safe to print without trusting it.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

namespace wasmlet {

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF).
bool IsValidUtf8(std::string_view text);

// `text` for a log line or an error message: invalid UTF-8 and control characters become \xNN
// escapes, and text longer than `max_bytes` is cut with "..." after it.
std::string Printable(std::string_view text, size_t max_bytes = 256);

// Lower-case hex of `bytes` (digests in file names, MD5 and SHA-256 checks).
std::string HexEncode(std::span<const unsigned char> bytes);

// %XX escapes undone (grpc-message, form fields, cookies); a '%' not followed by two hex digits
// stays as it is. A form's '+' is not a space here: a caller that reads forms replaces it first.
std::string PercentDecode(std::string_view text);
// Every byte outside A-Z a-z 0-9 - . _ ~ as %XX: safe in a cookie value or a query.
std::string PercentEncode(std::string_view text);

// Serialises `value`; strings that are not valid UTF-8 have the bad bytes replaced by U+FFFD
// instead of throwing, so a hostile string can never abort the process.
std::string ToJson(const nlohmann::json& value, int indent = -1);

// RFC 9110's tchar: what an HTTP method or header name may hold.
bool IsHttpTokenChar(unsigned char c);
// `text` is an HTTP token: not empty, and tchars only.
bool IsHttpToken(std::string_view text);
// `text` can be a header value: no CR, LF or NUL that would end its line or cut it.
bool IsHeaderValueSafe(std::string_view text);

// `time` in UTC as RFC 3339 with milliseconds: "2026-12-07T12:00:00.000Z".
std::string IsoTime(std::chrono::system_clock::time_point time);

}  // namespace wasmlet
