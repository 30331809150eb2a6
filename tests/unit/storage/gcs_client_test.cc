// GCS settings from options and environment, and the small helpers of the GCS client (no
// network: the requests themselves are tested against a real emulator in
// tests/integration/test_gcs_storage.py).
#include <gtest/gtest.h>

#include "sluice/storage/gcs_client.h"
#include "sluice/storage/object_store.h"

namespace sluice::storage {
namespace {

// Every GCS key given (empty = unset), so that the test does not depend on the environment.
std::map<std::string, std::string> gcs_options(std::map<std::string, std::string> more) {
  for (const char* key : {"GOOGLE_SERVICE_ACCOUNT", "GOOGLE_SERVICE_ACCOUNT_KEY", "GOOGLE_APPLICATION_CREDENTIALS",
                          "STORAGE_EMULATOR_HOST", "GOOGLE_OAUTH_ACCESS_TOKEN"}) {
    more.emplace(key, "");
  }
  return more;
}

TEST(GcsConfigTest, EmulatorHostWithoutSchemeIsPlainHttpAndNeedsNoCredentials) {
  auto c = gcs_config_from(gcs_options({{"STORAGE_EMULATOR_HOST", "127.0.0.1:4443"}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->emulator);
  EXPECT_EQ(c->endpoint, "http://127.0.0.1:4443");
  EXPECT_EQ(c->access_token, "");
  auto url = gcs_config_from(gcs_options({{"STORAGE_EMULATOR_HOST", "https://gcs.local:8443/"}}));
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->endpoint, "https://gcs.local:8443");
  auto path = gcs_config_from(gcs_options({{"STORAGE_EMULATOR_HOST", "http://h:1/storage/v1"}}));
  ASSERT_FALSE(path.ok());
  EXPECT_NE(path.status().message().find("has a path"), std::string::npos);
}

TEST(GcsConfigTest, RealGcsNeedsATokenAndSaysWhatToSet) {
  auto missing = gcs_config_from(gcs_options({}));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no GCS credentials: set GOOGLE_OAUTH_ACCESS_TOKEN"), std::string::npos);
  auto token = gcs_config_from(gcs_options({{"GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.secret-token"}}));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_FALSE(token->emulator);
  EXPECT_EQ(token->endpoint, "https://storage.googleapis.com");
}

TEST(GcsConfigTest, ServiceAccountsAreRefusedAsNotSupportedYetWithoutEchoingTheKey) {
  for (const char* key : {"GOOGLE_SERVICE_ACCOUNT", "GOOGLE_SERVICE_ACCOUNT_KEY", "GOOGLE_APPLICATION_CREDENTIALS"}) {
    auto refused = gcs_config_from(gcs_options({{key, "{\"private_key\": \"very-secret-key\"}"}}));
    ASSERT_FALSE(refused.ok()) << key;
    EXPECT_TRUE(refused.status().IsNotImplemented()) << key;
    const auto& message = refused.status().message();
    EXPECT_NE(message.find(std::string("(") + key + " is set) are not supported yet"), std::string::npos) << message;
    EXPECT_NE(message.find("set GOOGLE_OAUTH_ACCESS_TOKEN"), std::string::npos) << message;
    EXPECT_EQ(message.find("very-secret-key"), std::string::npos) << message;
  }
}

TEST(GcsConfigTest, AnS3OptionOnAGsUriIsRefusedNotIgnored) {
  auto loc = parse_location("gs://lake/t", "table path");
  ASSERT_TRUE(loc.ok());
  auto opened = open_location(*loc, {{"AWS_REGION", "eu-west-1"}, {"STORAGE_EMULATOR_HOST", "127.0.0.1:1"}});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().message(),
            "storage option 'AWS_REGION' is for S3 and does not apply to gs://lake/t (GCS storage); remove it");
  auto s3 = parse_location("s3://lake/t", "table path");
  ASSERT_TRUE(s3.ok());
  auto refused = open_location(*s3, {{"google_service_account", "/k.json"}});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("'GOOGLE_SERVICE_ACCOUNT' is for GCS and does not apply to s3://lake/t"),
            std::string::npos);
}

TEST(GcsClientTest, MultipartBodyHasTheNameAndABoundaryNotInTheContent) {
  const std::string content = "line --sluice-part-boundary-7f3a9c inside\n";
  auto [body, boundary] = gcs_multipart_body("t/_delta_log/00000000000000000001.json", content);
  EXPECT_EQ(content.find(boundary), std::string::npos);
  EXPECT_NE(body.find("{\"name\":\"t/_delta_log/00000000000000000001.json\"}"), std::string::npos);
  EXPECT_NE(body.find("\r\n\r\n" + content + "\r\n--" + boundary + "--\r\n"), std::string::npos);
  EXPECT_EQ(body.rfind("--" + boundary + "\r\n", 0), 0u);
}

TEST(GcsClientTest, Rfc3339TimesKeepTheirFraction) {
  EXPECT_EQ(rfc3339_nanos("1970-01-01T00:00:01Z"), 1'000'000'000);
  EXPECT_EQ(rfc3339_nanos("1970-01-01T00:00:01.5Z"), 1'500'000'000);
  EXPECT_EQ(rfc3339_nanos("2026-12-06T09:20:39.235218Z"), 1796548839'235218000);
  EXPECT_EQ(rfc3339_nanos("not a time"), 0);
}

TEST(GcsClientTest, ErrorTextIsTheStatusAndGcsMessage) {
  GcsResponse r{412, R"({"error":{"code":412,"message":"Precondition failed"}})"};
  EXPECT_EQ(gcs_error_text(r), "HTTP 412: Precondition failed");
  EXPECT_EQ(gcs_error_text(GcsResponse{503, "<html>"}), "HTTP 503");
  EXPECT_EQ(gcs_encode("t/a b%.json"), "t%2Fa%20b%25.json");
}

}  // namespace
}  // namespace sluice::storage
