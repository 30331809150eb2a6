// GCS settings from options and environment, and the small helpers of the GCS client (no
// network: the requests themselves are tested against a real emulator in
// tests/integration/test_gcs_storage.py).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "sluice/storage/gcs_client.h"
#include "sluice/storage/gcs_credentials.h"
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

// A fresh RSA key as PEM (PKCS#8, as Google's key files hold it) and its public half.
std::pair<std::string, EVP_PKEY*> rsa_key() {
  EVP_PKEY* key = EVP_RSA_gen(1024);  // small: a quick test
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, n);
  BIO_free(bio);
  return {pem, key};
}

std::string unbase64url(std::string s) {
  for (auto& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (s.size() % 4) s += '=';
  std::string out(s.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(n - (s.size() - s.find_last_not_of('=') - 1));
  return out;
}

TEST(GcsServiceAccountTest, KeysThatAreNotServiceAccountKeysAreRefusedWithoutEchoingThem) {
  auto user = parse_gcs_service_account(R"({"type": "authorized_user", "refresh_token": "very-secret"})", "X");
  ASSERT_FALSE(user.ok());
  EXPECT_TRUE(user.status().IsNotImplemented());
  EXPECT_NE(user.status().message().find("of type 'authorized_user', which sluice does not support yet"),
            std::string::npos);
  auto partial = parse_gcs_service_account(R"({"private_key": "very-secret-key"})", "GOOGLE_SERVICE_ACCOUNT_KEY");
  ASSERT_FALSE(partial.ok());
  EXPECT_EQ(partial.status().message(),
            "the GCS service-account key from GOOGLE_SERVICE_ACCOUNT_KEY has no client_email; give the whole key "
            "file Google issued");
  auto http = parse_gcs_service_account(
      R"({"client_email": "a@b", "private_key": "k", "token_uri": "http://oauth.example/token"})", "X");
  ASSERT_FALSE(http.ok());
  EXPECT_NE(http.status().message().find("must be https (plain http only to the loopback"), std::string::npos);
  for (const char* key : {"GOOGLE_SERVICE_ACCOUNT", "GOOGLE_APPLICATION_CREDENTIALS"}) {
    auto json_in_path = gcs_config_from(gcs_options({{key, " {\"private_key\": \"very-secret-key\"}"}}));
    ASSERT_FALSE(json_in_path.ok());
    EXPECT_NE(json_in_path.status().message().find("holds JSON, not the path of a key file"), std::string::npos);
    EXPECT_EQ(json_in_path.status().message().find("very-secret"), std::string::npos);
  }
  auto both = gcs_config_from(gcs_options({{"GOOGLE_OAUTH_ACCESS_TOKEN", "t"}, {"GOOGLE_SERVICE_ACCOUNT", "/k.json"}}));
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.status().message(), "both GOOGLE_OAUTH_ACCESS_TOKEN and GOOGLE_SERVICE_ACCOUNT are set; set one of them");
}

TEST(GcsServiceAccountTest, TheJwtAssertionIsSignedRs256WithTheKeyAndNamesIssuerAudienceAndScope) {
  auto [pem, key] = rsa_key();
  const nlohmann::json file = {{"type", "service_account"}, {"client_email", "sa@lake.iam.gserviceaccount.com"},
                               {"private_key", pem},        {"private_key_id", "kid-1"},
                               {"token_uri", "http://127.0.0.1:1/token"}};
  auto account = parse_gcs_service_account(file.dump(), "GOOGLE_SERVICE_ACCOUNT_KEY");
  ASSERT_TRUE(account.ok()) << account.status();
  auto jwt = gcs_jwt_assertion(*account, "scope-x", 1'800'000'000);
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  const auto dot1 = jwt->find('.'), dot2 = jwt->rfind('.');
  const auto header = nlohmann::json::parse(unbase64url(jwt->substr(0, dot1)));
  const auto claims = nlohmann::json::parse(unbase64url(jwt->substr(dot1 + 1, dot2 - dot1 - 1)));
  EXPECT_EQ(header, (nlohmann::json{{"alg", "RS256"}, {"typ", "JWT"}, {"kid", "kid-1"}}));
  EXPECT_EQ(claims, (nlohmann::json{{"iss", "sa@lake.iam.gserviceaccount.com"}, {"scope", "scope-x"},
                                    {"aud", "http://127.0.0.1:1/token"}, {"iat", 1'800'000'000},
                                    {"exp", 1'800'003'600}}));
  const std::string signed_part = jwt->substr(0, dot2), signature = unbase64url(jwt->substr(dot2 + 1));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ASSERT_EQ(EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key), 1);
  EXPECT_EQ(EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                             reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()),
            1);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  auto bad = *account;
  bad.private_key = "-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n";
  auto refused = gcs_jwt_assertion(bad, "scope-x", 1);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message().find("not-a-key"), std::string::npos);
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
