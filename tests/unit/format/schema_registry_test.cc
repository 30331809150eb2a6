// The schema registry client's settings: http and https URLs, the CA file, credentials.
#include "sluice/format/schema_registry.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "sluice/common/secrets.h"
#include "sluice/common/status.h"

namespace sluice::format {
namespace {

std::string temp_file(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

TEST(SchemaRegistryClientTest, AcceptsHttpsWithACaFile) {
  const auto ca = temp_file("registry-ca.pem", "-----BEGIN CERTIFICATE-----\n");
  auto client = SchemaRegistryClient::make("https://127.0.0.1:1/apis/ccompat/v7", {{"ssl.ca.location", ca}});
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_EQ((*client)->url(), "https://127.0.0.1:1/apis/ccompat/v7");
}

TEST(SchemaRegistryClientTest, UnreachableHttpsRegistryIsRetryable) {
  auto client = SchemaRegistryClient::make("https://127.0.0.1:1").ValueOrDie();
  auto st = client->schema_by_id(3).status();
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(is_retryable(st)) << st.ToString();
  EXPECT_NE(st.message().find("cannot reach schema registry at https://127.0.0.1:1/schemas/ids/3"),
            std::string::npos)
      << st.message();
}

TEST(SchemaRegistryClientTest, RefusesACaFileItWouldNotUse) {
  const auto ca = temp_file("unused-ca.pem", "x");
  auto client = SchemaRegistryClient::make("http://127.0.0.1:1", {{"ssl.ca.location", ca}});
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.status().message().find("is plain http: its CA file"), std::string::npos)
      << client.status().message();
}

TEST(SchemaRegistryClientTest, RefusesAMissingCaFileAndOtherSchemes) {
  auto missing = SchemaRegistryClient::make("https://h:1", {{"ssl.ca.location", "/no/such/ca.pem"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            "schema registry CA file /no/such/ca.pem cannot be read: give the PEM file of the CA "
            "that signed the registry's certificate");
  auto ftp = SchemaRegistryClient::make("ftp://h:1");
  ASSERT_FALSE(ftp.ok());
  EXPECT_NE(ftp.status().message().find("must start with http:// or https://"), std::string::npos);
  EXPECT_FALSE(SchemaRegistryClient::make("https://").ok());
}

TEST(SchemaRegistryClientTest, AuthFileIsReadAndItsPasswordRemembered) {
  const auto path = temp_file("registry.auth", "alice:Pw-from-file-81\r\n");
  auto auth = read_registry_auth_file(path, "--registry-auth-file");
  ASSERT_TRUE(auth.ok()) << auth.status().ToString();
  EXPECT_EQ(*auth, "alice:Pw-from-file-81");
  EXPECT_EQ(redact_values("said Pw-from-file-81", remembered_secrets()), "said <redacted>");
  const auto bad = temp_file("registry-bad.auth", "token-only\n");
  EXPECT_EQ(read_registry_auth_file(bad, "--registry-auth-file").status().message(),
            "--registry-auth-file " + bad + ": its first line must be 'user:password'");
}

}  // namespace
}  // namespace sluice::format
