// The local secret stores: "local.file" (nested keys, multiValued, bad files named in the error)
// and "local.env" (a prefix bounds what a function sees).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "components/secret/secret_store.h"
#include "e2e/harness.h"

namespace wasmlet::components {
namespace {

StoreConfig Config(const std::string& type, std::map<std::string, std::string> metadata) {
  StoreConfig config;
  config.name = "vault";
  config.type = type;
  config.json_path = "grpc_config.secret_store.vault";
  config.metadata = std::move(metadata);
  return config;
}

std::string Write(testing::TempDir& dir, const std::string& text) {
  const std::string path = dir.File("secrets.json");
  std::ofstream(path) << text;
  return path;
}

TEST(SecretStoreTest, AFileGivesEveryLeafAsASecretJoinedWithTheSeparator) {
  testing::TempDir dir;
  const std::string path =
      Write(dir, R"({"api-key": "k1", "db": {"user": "app", "password": "p@ss"}, "port": 5432})");
  auto store = CreateSecretStore(Config("local.file", {{"secretsFile", path}}));
  ASSERT_TRUE(store.ok()) << store.status().message();
  auto password = (*store)->Get("db:password");
  ASSERT_TRUE(password.ok() && *password);
  EXPECT_EQ(**password, (SecretData{{"db:password", "p@ss"}}));
  EXPECT_EQ(**(*store)->Get("port"), (SecretData{{"port", "5432"}}));
  EXPECT_FALSE(*(*store)->Get("db")) << "an object is not a secret";
  EXPECT_FALSE(*(*store)->Get("missing"));
  auto all = (*store)->GetAll();
  ASSERT_TRUE(all.ok());
  std::vector<std::string> names;
  for (const auto& [name, data] : *all) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"api-key", "db:password", "db:user", "port"}));

  auto dotted = CreateSecretStore(Config("local.file", {{"secretsFile", path}, {"nestedSeparator", "."}}));
  ASSERT_TRUE(dotted.ok());
  EXPECT_TRUE(*(*dotted)->Get("db.user"));
}

TEST(SecretStoreTest, MultiValuedMakesEachTopLevelKeyOneSecret) {
  testing::TempDir dir;
  const std::string path = Write(dir, R"({"db": {"user": "app", "password": "p"}, "token": "t"})");
  auto store = CreateSecretStore(Config("local.file", {{"secretsFile", path}, {"multiValued", "true"}}));
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ(**(*store)->Get("db"), (SecretData{{"password", "p"}, {"user", "app"}}));
  EXPECT_EQ(**(*store)->Get("token"), (SecretData{{"token", "t"}}));
  EXPECT_FALSE(*(*store)->Get("db:user"));
}

TEST(SecretStoreTest, ABadFileOrConfigIsRefusedNamingIt) {
  testing::TempDir dir;
  auto missing = CreateSecretStore(Config("local.file", {{"secretsFile", dir.File("none.json")}}));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(
      missing.status().message().find("grpc_config.secret_store.vault.metadata.secretsFile: cannot read"),
      std::string::npos)
      << missing.status().message();
  auto not_json = CreateSecretStore(Config("local.file", {{"secretsFile", Write(dir, "[1, 2")}}));
  ASSERT_FALSE(not_json.ok());
  EXPECT_NE(not_json.status().message().find("is not a JSON object of secrets"), std::string::npos);
  EXPECT_FALSE(CreateSecretStore(Config("local.file", {})).ok());
  auto bad_type = CreateSecretStore(Config("vault", {}));
  ASSERT_FALSE(bad_type.ok());
  EXPECT_NE(bad_type.status().message().find("unknown secret store type \"vault\""), std::string::npos);
}

TEST(SecretStoreTest, TheEnvironmentWithAPrefixShowsOnlyItsVariablesWithoutThePrefix) {
  ::setenv("WASMLET_SECRET_TEST_DB_PASSWORD", "hunter2", 1);
  ::setenv("WASMLET_SECRET_TESTX", "not mine", 1);
  auto store = CreateSecretStore(Config("local.env", {{"prefix", "WASMLET_SECRET_TEST_"}}));
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ(**(*store)->Get("DB_PASSWORD"), (SecretData{{"DB_PASSWORD", "hunter2"}}));
  EXPECT_FALSE(*(*store)->Get("PATH")) << "outside the prefix";
  auto all = (*store)->GetAll();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].first, "DB_PASSWORD");
  // Without a prefix, the whole environment, as Dapr's local.env.
  auto everything = CreateSecretStore(Config("local.env", {}));
  ASSERT_TRUE(everything.ok());
  EXPECT_TRUE(*(*everything)->Get("WASMLET_SECRET_TESTX"));
}

}  // namespace
}  // namespace wasmlet::components
