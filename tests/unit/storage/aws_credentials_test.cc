// Which link of the AWS credential chain applies (no network: fetching from STS, a container
// endpoint and the instance metadata is tested against real servers in
// tests/integration/test_s3_credentials.py).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "sluice/storage/aws_credentials.h"

namespace sluice::storage {
namespace {

// Every setting of the chain given (empty unless `more` says otherwise), so that the test's own
// environment and home folder play no part.
std::map<std::string, std::string> hermetic(std::map<std::string, std::string> more) {
  for (const char* key : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                          "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL",
                          "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                          "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                          "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_METADATA_ENDPOINT"}) {
    more.emplace(key, "");
  }
  more.emplace("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials");
  more.emplace("AWS_CONFIG_FILE", "/nonexistent/config");
  return more;
}

class AwsProfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sluice-aws-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  std::filesystem::path dir_;
};

arrow::Result<AwsCredentialChain> chain(std::map<std::string, std::string> options) {
  return aws_credential_chain_from(hermetic(std::move(options)), "https://sts.us-east-1.amazonaws.com", false);
}

TEST(AwsCredentialChainTest, StaticKeysComeFirstAndKeepTheirSessionToken) {
  auto c = chain({{"AWS_ACCESS_KEY_ID", "AKID"}, {"AWS_SECRET_ACCESS_KEY", "s3cr3t"}, {"AWS_SESSION_TOKEN", "tok"},
                  {"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"}, {"AWS_WEB_IDENTITY_TOKEN_FILE", "/t"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->source, AwsCredentialSource::kStatic);
  EXPECT_EQ(c->keys.session_token, "tok");
}

TEST(AwsCredentialChainTest, HalfGivenKeysOrRoleAreRefusedNamingTheMissingSetting) {
  auto keys = chain({{"AWS_SECRET_ACCESS_KEY", "s3cr3t-half"}});
  ASSERT_FALSE(keys.ok());
  EXPECT_NE(keys.status().message().find("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"), std::string::npos);
  EXPECT_EQ(keys.status().message().find("s3cr3t-half"), std::string::npos);
  auto role = chain({{"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"}});
  ASSERT_FALSE(role.ok());
  EXPECT_NE(role.status().message().find("AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not"),
            std::string::npos);
}

TEST(AwsCredentialChainTest, WebIdentityUsesTheStsEndpointSettingThenTheGlobalOne) {
  auto c = chain({{"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"}, {"AWS_WEB_IDENTITY_TOKEN_FILE", "/t"},
                  {"AWS_ENDPOINT_URL", "http://127.0.0.1:9000/"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->source, AwsCredentialSource::kWebIdentity);
  EXPECT_EQ(c->sts_endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(c->session_name.rfind("sluice-", 0), 0u);
  auto sts = chain({{"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"}, {"AWS_WEB_IDENTITY_TOKEN_FILE", "/t"},
                    {"AWS_ENDPOINT_URL_STS", "https://sts.example"}, {"AWS_ROLE_SESSION_NAME", "s"}});
  ASSERT_TRUE(sts.ok()) << sts.status();
  EXPECT_EQ(sts->sts_endpoint, "https://sts.example");
  EXPECT_EQ(sts->session_name, "s");
  auto aws = chain({{"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"}, {"AWS_WEB_IDENTITY_TOKEN_FILE", "/t"}});
  ASSERT_TRUE(aws.ok()) << aws.status();
  EXPECT_EQ(aws->sts_endpoint, "https://sts.us-east-1.amazonaws.com");
}

TEST_F(AwsProfileTest, ProfileKeysComeFromTheCredentialsFileAndTheRegionFromTheConfigFile) {
  const auto credentials = write("credentials", "[default]\naws_access_key_id = D\naws_secret_access_key = d\n"
                                                "# comment\n[lake]\naws_access_key_id=L\naws_secret_access_key=l\n"
                                                "aws_session_token = t\n");
  const auto config = write("config", "[default]\nregion = us-west-2\n[profile lake]\nregion = eu-west-1\n"
                                      "[sso-session x]\nsso_region = us-east-1\n");
  auto d = chain({{"AWS_SHARED_CREDENTIALS_FILE", credentials}, {"AWS_CONFIG_FILE", config}});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->source, AwsCredentialSource::kProfile);
  EXPECT_EQ(d->keys.access_key, "D");
  EXPECT_EQ(d->region, "us-west-2");
  auto lake = chain({{"AWS_SHARED_CREDENTIALS_FILE", credentials}, {"AWS_CONFIG_FILE", config}, {"AWS_PROFILE", "lake"}});
  ASSERT_TRUE(lake.ok()) << lake.status();
  EXPECT_EQ(lake->keys.access_key, "L");
  EXPECT_EQ(lake->keys.session_token, "t");
  EXPECT_EQ(lake->region, "eu-west-1");
  EXPECT_EQ(lake->describe(), "AWS profile 'lake' (" + config + " and " + credentials + ")");
}

TEST_F(AwsProfileTest, ANamedProfileNoFileHoldsIsRefused) {
  const auto credentials = write("credentials", "[default]\naws_access_key_id = D\naws_secret_access_key = d\n");
  auto c = chain({{"AWS_SHARED_CREDENTIALS_FILE", credentials}, {"AWS_PROFILE", "nope"}});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().rfind("AWS profile 'nope' (AWS_PROFILE) is in neither " + credentials, 0), 0u)
      << c.status().message();
}

TEST_F(AwsProfileTest, ProfileSettingsNotSupportedYetAreRefusedByName) {
  const auto config = write("config", "[profile p]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = default\n"
                                      "[profile w]\nrole_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = /t\n"
                                      "[profile c]\ncredential_process = /bin/creds\n"
                                      "[profile k]\nregion = eu-west-1\nrole_arn = arn:aws:iam::1:role/k\n"
                                      "source_profile = base\nrole_session_name = s\n"
                                      "[profile base]\naws_access_key_id = B\naws_secret_access_key = b\n");
  auto p = chain({{"AWS_CONFIG_FILE", config}, {"AWS_PROFILE", "p"}});
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(p.status().IsNotImplemented());
  EXPECT_NE(p.status().message().find("with source_profile 'default', which is in neither"), std::string::npos)
      << p.status().message();
  auto c = chain({{"AWS_CONFIG_FILE", config}, {"AWS_PROFILE", "c"}});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("sets credential_process, which sluice does not support yet"), std::string::npos);
  auto k = chain({{"AWS_CONFIG_FILE", config}, {"AWS_PROFILE", "k"}});
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(k->source, AwsCredentialSource::kAssumeRole);
  EXPECT_EQ(k->keys.access_key, "B");
  EXPECT_EQ(k->role_arn, "arn:aws:iam::1:role/k");
  EXPECT_EQ(k->session_name, "s");
  EXPECT_EQ(k->region, "eu-west-1");
  auto w = chain({{"AWS_CONFIG_FILE", config}, {"AWS_PROFILE", "w"}});
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->source, AwsCredentialSource::kWebIdentity);
  EXPECT_EQ(w->token_file, "/t");
}

TEST(AwsCredentialChainTest, ContainerEndpointOverPlainHttpOnlyToLoopbackOrTheEcsAddresses) {
  auto relative = chain({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x"}});
  ASSERT_TRUE(relative.ok()) << relative.status();
  EXPECT_EQ(relative->container_url, "http://169.254.170.2/v2/credentials/x");
  auto local = chain({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:8080/creds"},
                      {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret-auth"}});
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(local->source, AwsCredentialSource::kContainer);
  auto remote = chain({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds"}});
  ASSERT_FALSE(remote.ok());
  EXPECT_NE(remote.status().message().find("is plain http to a host other than the loopback"), std::string::npos);
}

TEST(AwsCredentialChainTest, InstanceMetadataIsTheLastLinkUnlessDisabled) {
  auto imds = chain({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1/"}});
  ASSERT_TRUE(imds.ok()) << imds.status();
  EXPECT_EQ(imds->source, AwsCredentialSource::kInstanceMetadata);
  EXPECT_EQ(imds->metadata_endpoint, "http://127.0.0.1:1");
  auto none = chain({{"AWS_EC2_METADATA_DISABLED", "true"}});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message().rfind("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", 0), 0u);
  EXPECT_NE(none.status().message().find("profile 'default' (not in /nonexistent/credentials or /nonexistent/config)"),
            std::string::npos)
      << none.status().message();
}

TEST(AwsCredentialChainTest, Iso8601TimesWithAndWithoutFractionsOrOffset) {
  EXPECT_EQ(iso8601_seconds("2026-12-06T16:10:00Z"), 1796573400);
  EXPECT_EQ(iso8601_seconds("2026-12-06T16:10:00.123Z"), 1796573400);
  EXPECT_EQ(iso8601_seconds("2026-12-06T16:10:00+00:00"), 1796573400);
  EXPECT_EQ(iso8601_seconds("yesterday"), 0);
}

}  // namespace
}  // namespace sluice::storage
