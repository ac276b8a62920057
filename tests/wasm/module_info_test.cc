#include "wasm/module_info.h"

#include <gtest/gtest.h>

#include "test_support.h"
#include "wasm/prepare.h"
#include "wasm/reader.h"

#include <set>

namespace wasmlet::wasm {
namespace {

using testing::GuestBytes;
using testing::ModuleBytes;

TEST(ModuleInfoTest, ReadsImportsExportsAndMemoryOfABuiltGuest) {
  auto info = ParseModule(GuestBytes("engine_basics"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();

  const Import* host_add = nullptr;
  for (const auto& imp : info->imports) {
    if (imp.name == "host_add") host_add = &imp;
  }
  ASSERT_NE(host_add, nullptr);
  EXPECT_EQ(host_add->module, "env");
  EXPECT_EQ(info->ImportType(*host_add)->ToString(), "(i32, i32) -> i32");

  ASSERT_NE(info->ExportedFunctionType("mul64"), nullptr);
  EXPECT_EQ(info->ExportedFunctionType("mul64")->ToString(), "(i64, i64) -> i64");
  EXPECT_EQ(info->ExportedFunctionType("noop")->ToString(), "() -> ()");
  EXPECT_EQ(info->ExportedFunctionType("memory"), nullptr);  // a memory, not a function
  ASSERT_NE(info->FindExport("memory"), nullptr);
  EXPECT_EQ(info->FindExport("memory")->kind, ExternKind::kMemory);

  ASSERT_TRUE(info->memory.has_value());
  EXPECT_FALSE(info->memory->imported);
  EXPECT_GE(info->memory->limits.min, 1u);
  EXPECT_EQ(info->AbiMarker(), "");
}

TEST(ModuleInfoTest, FindsTheProxyWasmAbiMarker) {
  auto info = ParseModule(testing::ReadBytes(std::string(WASMLET_EXAMPLES) + "/hello.wasm"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->AbiMarker(), "proxy_abi_version_0_2_1");
}

TEST(ModuleInfoTest, EveryTruncationIsAnErrorNamingTheOffset) {
  const auto bytes = GuestBytes("engine_basics");
  ASSERT_GT(bytes.size(), 100u);
  // Cutting exactly between two sections leaves a shorter valid module; everywhere else, the
  // cut is inside a header or a section and must be refused.
  std::set<size_t> boundaries = {8};
  for (size_t pos = 8; pos < bytes.size();) {
    Reader r(std::span<const uint8_t>(bytes).subspan(pos + 1));
    const uint32_t size = *r.U32("size");
    pos += 1 + (r.offset()) + size;
    boundaries.insert(pos);
  }
  for (size_t n = 0; n < bytes.size(); ++n) {
    if (boundaries.count(n)) continue;
    auto info = ParseModule(std::span(bytes.data(), n));
    ASSERT_FALSE(info.ok()) << "a module cut to " << n << " bytes was accepted";
    EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
    if (n >= 8) {
      EXPECT_NE(info.status().message().find("at byte"), std::string::npos) << info.status().message();
    }
  }
}

TEST(ModuleInfoTest, RejectsWhatIsNotAModule) {
  const std::string text = "(module (func))";
  auto wat = ParseModule({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  EXPECT_NE(wat.status().message().find("does not start with the bytes \\0asm"), std::string::npos);

  const std::vector<uint8_t> component = {0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00};
  EXPECT_NE(ParseModule(component).status().message().find("version"), std::string::npos);

  // A section that claims more bytes than there are.
  auto lying = ModuleBytes().Section(1, {0x01, 0x60, 0x00, 0x00}).bytes();
  lying[9] = 0x7f;
  EXPECT_NE(ParseModule(lying).status().message().find("truncated"), std::string::npos);

  // A LEB128 with too many bytes.
  auto overlong = ModuleBytes().Section(1, {0xff, 0xff, 0xff, 0xff, 0xff, 0x01}).bytes();
  EXPECT_NE(ParseModule(overlong).status().message().find("too large"), std::string::npos);

  // Sections out of order.
  auto swapped = ModuleBytes().Section(3, {0x00}).Section(1, {0x00}).bytes();
  EXPECT_NE(ParseModule(swapped).status().message().find("out of order"), std::string::npos);

  // An import whose type index does not exist.
  std::vector<uint8_t> imports = {0x01};
  for (auto part : {ModuleBytes::Name("env"), ModuleBytes::Name("f")})
    imports.insert(imports.end(), part.begin(), part.end());
  imports.insert(imports.end(), {0x00, 0x05});
  auto bad_index = ModuleBytes().Section(1, {0x01, 0x60, 0x00, 0x00}).Section(2, imports).bytes();
  EXPECT_NE(ParseModule(bad_index).status().message().find("type index out of range"), std::string::npos);
}

TEST(PrepareModuleTest, CapsMemoryExportsItAndTurnsTheStartSectionIntoAnExport) {
  // (memory 2) with no maximum, not exported; (start 0)
  auto bytes = ModuleBytes()
                   .Section(1, {0x01, 0x60, 0x00, 0x00})
                   .Section(3, {0x01, 0x00})
                   .Section(5, {0x01, 0x00, 0x02})
                   .Section(8, {0x00})
                   .Section(10, {0x01, 0x02, 0x00, 0x0b})
                   .bytes();
  auto info = ParseModule(bytes);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto prepared = PrepareModule(bytes, *info, 16);
  ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
  EXPECT_EQ(prepared->memory_export, kHostMemoryExport);
  EXPECT_EQ(prepared->start_export, kHostStartExport);

  auto after = ParseModule(prepared->bytes);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_FALSE(after->start_function.has_value());
  EXPECT_EQ(after->memory->limits.min, 2u);
  EXPECT_EQ(after->memory->limits.max, 16u);
  ASSERT_NE(after->ExportedFunctionType(kHostStartExport), nullptr);
  ASSERT_NE(after->FindExport(kHostMemoryExport), nullptr);

  // A declared maximum below the cap is kept; above it, lowered.
  bytes =
      ModuleBytes().Section(5, {0x01, 0x01, 0x01, 0x04}).Section(7, {0x01, 0x01, 'm', 0x02, 0x00}).bytes();
  info = ParseModule(bytes);
  ASSERT_TRUE(info.ok());
  auto kept = PrepareModule(bytes, *info, 16);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->memory_export, "m");
  EXPECT_EQ(ParseModule(kept->bytes)->memory->limits.max, 4u);
  auto lowered = PrepareModule(bytes, *info, 2);
  ASSERT_TRUE(lowered.ok());
  EXPECT_EQ(ParseModule(lowered->bytes)->memory->limits.max, 2u);
}

TEST(PrepareModuleTest, RefusesImportedMemoryAndInitialMemoryAboveTheCap) {
  std::vector<uint8_t> imports = {0x01};
  for (auto part : {ModuleBytes::Name("env"), ModuleBytes::Name("memory")})
    imports.insert(imports.end(), part.begin(), part.end());
  imports.insert(imports.end(), {0x02, 0x00, 0x01});
  auto imported = ModuleBytes().Section(2, imports).bytes();
  auto info = ParseModule(imported);
  ASSERT_TRUE(info.ok());
  EXPECT_NE(PrepareModule(imported, *info, 16).status().message().find("imports its linear memory"),
            std::string::npos);

  auto big = ModuleBytes().Section(5, {0x01, 0x00, 0x20}).bytes();  // 32 pages
  info = ParseModule(big);
  ASSERT_TRUE(info.ok());
  auto refused = PrepareModule(big, *info, 16);
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("2 MiB of memory at start, above the cap of 1 MiB"),
            std::string::npos)
      << refused.status().message();
}

}  // namespace
}  // namespace wasmlet::wasm
