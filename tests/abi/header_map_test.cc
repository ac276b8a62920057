#include "abi/header_map.h"

#include <gtest/gtest.h>

namespace wasmlet::abi {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(HeaderMapTest, SerializesThePairsFormatExactly) {
  // ABI §6.1 worked example: {a: 1, b: 22} is 29 bytes.
  const std::string expected(
      "\x02\x00\x00\x00"
      "\x01\x00\x00\x00\x01\x00\x00\x00"
      "\x01\x00\x00\x00\x02\x00\x00\x00"
      "a\0001\000b\00022\000",
      29);
  HeaderMap map(HeaderList{{"a", "1"}, {"b", "22"}});
  EXPECT_EQ(map.Serialize(), expected);
  EXPECT_EQ(map.SerializedSize(), 29u);
  auto parsed = ParsePairs(Bytes(expected));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, (HeaderList{{"a", "1"}, {"b", "22"}}));

  // With an empty value: 33 bytes.
  EXPECT_EQ(HeaderMap(HeaderList{{":path", "/"}, {"x-a", ""}}).Serialize().size(), 33u);
}

TEST(HeaderMapTest, EmptyMapsTravelAsNothingAndAllThreeEmptyFormsParse) {
  EXPECT_EQ(HeaderMap().Serialize(), "");
  EXPECT_EQ(HeaderMap().SerializedSize(), 0u);
  for (const std::string& empty : {std::string(), std::string(1, '\0'), std::string(4, '\0')}) {
    auto parsed = ParsePairs(Bytes(empty));
    ASSERT_TRUE(parsed) << empty.size();
    EXPECT_TRUE(parsed->empty());
  }
}

TEST(HeaderMapTest, MalformedInputIsRefused) {
  const std::string good = HeaderMap(HeaderList{{"a", "1"}}).Serialize();
  EXPECT_FALSE(ParsePairs(Bytes(good.substr(0, good.size() - 1))));  // truncated
  EXPECT_FALSE(ParsePairs(Bytes(good + "x")));                       // trailing bytes
  std::string no_nul = good;
  no_nul[no_nul.size() - 1] = 'x';
  EXPECT_FALSE(ParsePairs(Bytes(no_nul)));
  std::string huge_count = good;
  huge_count[3] = '\x7f';
  EXPECT_FALSE(ParsePairs(Bytes(huge_count)));
  EXPECT_FALSE(ParsePairs(Bytes(std::string("\x01\x00", 2))));
}

TEST(HeaderMapTest, NamesAreCaseInsensitiveAndStoredLowerCase) {
  HeaderMap map(HeaderList{{"Content-Type", "text/plain"}});
  EXPECT_EQ(map.pairs()[0].first, "content-type");
  EXPECT_EQ(map.Get("CONTENT-TYPE"), "text/plain");
  map.Add("X-Multi", "1");
  map.Add("x-multi", "2");
  EXPECT_EQ(map.size(), 3u);
  map.Replace("X-MULTI", "only");
  EXPECT_EQ(map.pairs(), (HeaderList{{"content-type", "text/plain"}, {"x-multi", "only"}}));
  map.Replace("x-new", "");
  EXPECT_EQ(map.Get("x-new"), "");
  map.Remove("x-absent");
  map.Remove("Content-Type");
  EXPECT_FALSE(map.Get("content-type"));
  EXPECT_EQ(map.size(), 2u);
}

}  // namespace
}  // namespace wasmlet::abi
