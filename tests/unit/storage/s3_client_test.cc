// S3 settings from options and environment, and the small helpers of the S3 client (no
// network: the requests themselves are tested against a real server in
// tests/integration/test_object_storage.py).
#include <gtest/gtest.h>

#include "sluice/storage/s3_client.h"

namespace sluice::storage {
namespace {

std::map<std::string, std::string> with_keys(std::map<std::string, std::string> more) {
  more.emplace("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
  more.emplace("AWS_SECRET_ACCESS_KEY", "very-secret-value");
  return more;
}

TEST(S3ConfigTest, PlainHttpEndpointNeedsAllowHttpAndNamesTheSetting) {
  auto refused = s3_config_from(with_keys({{"AWS_ENDPOINT_URL", "http://127.0.0.1:9000"}, {"AWS_ALLOW_HTTP", "false"}}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(),
            "S3 endpoint http://127.0.0.1:9000 is plain http: set AWS_ALLOW_HTTP=true (environment or "
            "storage_options) to allow it, or use https");
  auto allowed = s3_config_from(with_keys({{"AWS_ENDPOINT_URL", "http://127.0.0.1:9000/"}, {"AWS_ALLOW_HTTP", "true"}}));
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_EQ(allowed->endpoint, "http://127.0.0.1:9000");
}

TEST(S3ConfigTest, OptionsWinOverTheEnvironmentAndTheRegionNamesTheDefaultEndpoint) {
  auto c = s3_config_from(with_keys({{"AWS_REGION", "eu-central-1"}, {"AWS_ENDPOINT_URL", ""}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->region, "eu-central-1");
  EXPECT_EQ(c->endpoint, "https://s3.eu-central-1.amazonaws.com");
}

TEST(S3ConfigTest, MissingCredentialsSayWhatToSetAndNoMessageEchoesASecret) {
  auto missing = s3_config_from({{"AWS_ACCESS_KEY_ID", ""},
                                 {"AWS_SECRET_ACCESS_KEY", ""},
                                 {"AWS_ENDPOINT_URL", "https://x"},
                                 {"AWS_WEB_IDENTITY_TOKEN_FILE", ""},
                                 {"AWS_ROLE_ARN", ""},
                                 {"AWS_PROFILE", ""},
                                 {"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"},
                                 {"AWS_CONFIG_FILE", "/nonexistent/config"},
                                 {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", ""},
                                 {"AWS_CONTAINER_CREDENTIALS_FULL_URI", ""},
                                 {"AWS_EC2_METADATA_DISABLED", "true"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), std::string::npos);
  auto bad = s3_config_from(with_keys({{"AWS_ENDPOINT_URL", "ftp://x"}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("very-secret-value"), std::string::npos);
}

TEST(S3ClientHelpersTest, KeysArePercentEncodedAndXmlValuesDecoded) {
  EXPECT_EQ(s3_encode("t/part=x y/50%.parquet", true), "t/part%3Dx%20y/50%25.parquet");
  EXPECT_EQ(s3_encode("a/b", false), "a%2Fb");
  const std::string xml = "<R><Contents><Key>a&amp;b</Key></Contents><Contents><Key>c</Key></Contents></R>";
  EXPECT_EQ(xml_values(xml, "Key"), (std::vector<std::string>{"a&b", "c"}));
  S3Response r{403, "<Error><Code>AccessDenied</Code><Message>no</Message></Error>", {}};
  EXPECT_EQ(s3_error_text(r), "HTTP 403 AccessDenied: no");
}

}  // namespace
}  // namespace sluice::storage
