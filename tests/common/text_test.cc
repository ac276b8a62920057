// The HTTP token and header-value checks every part that builds a request or an answer from
// outside text uses (bindings, the Dapr API, subscriptions' headers, upstream and ingress).
#include <gtest/gtest.h>

#include <string>

#include "common/text.h"

namespace wasmlet {
namespace {

TEST(HttpTokenTest, RfcTcharsMakeATokenAndAnythingElseDoesNot) {
  EXPECT_TRUE(IsHttpToken("content-type"));
  EXPECT_TRUE(IsHttpToken("X-Custom_Header.v2"));
  EXPECT_TRUE(IsHttpToken("!#$%&'*+-.^_`|~"));
  EXPECT_FALSE(IsHttpToken(""));
  for (std::string bad : {"a b", "a:b", ":path", "a\r\nb", "a(b)", "a/b", "\xc3\xa9t\xc3\xa9", "a\"b"})
    EXPECT_FALSE(IsHttpToken(bad)) << Printable(bad);
  // NUL is no tchar, though a C-string lookup of it would find the terminator.
  EXPECT_FALSE(IsHttpTokenChar('\0'));
  EXPECT_FALSE(IsHttpToken(std::string("ab\0c", 4)));
}

TEST(HttpTokenTest, AHeaderValueMayHoldAnythingButWhatEndsOrCutsItsLine) {
  EXPECT_TRUE(IsHeaderValueSafe("text/plain; charset=utf-8 (with spaces: and colons)"));
  EXPECT_TRUE(IsHeaderValueSafe(""));
  EXPECT_FALSE(IsHeaderValueSafe("a\r\nInjected: yes"));
  EXPECT_FALSE(IsHeaderValueSafe("a\nb"));
  EXPECT_FALSE(IsHeaderValueSafe(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace wasmlet
