// Azure settings from options, connection strings and the emulator's defaults (no network: the
// requests are tested against Azurite in tests/integration/test_azure_storage.py).
#include <gtest/gtest.h>

#include "sluice/storage/azure_client.h"

namespace sluice::storage {
namespace {

constexpr const char* kKey = "c2VjcmV0LWFjY291bnQta2V5LXZhbHVlIQ==";  // base64("secret-account-key-value!")

// Every key given (empty when unused) so that the test's environment does not leak in.
std::map<std::string, std::string> options(std::map<std::string, std::string> more) {
  for (const char* key : {"AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN",
                          "AZURE_STORAGE_ENDPOINT", "AZURE_STORAGE_USE_EMULATOR", "AZURE_ALLOW_HTTP",
                          "AZURE_STORAGE_CONNECTION_STRING", "AZURITE_BLOB_STORAGE_URL"}) {
    more.emplace(key, "");
  }
  return more;
}

TEST(AzureConfigTest, AccountAndKeyGiveTheDefaultEndpoint) {
  auto c = azure_config_from(options({{"AZURE_STORAGE_ACCOUNT_NAME", "acct"}, {"AZURE_STORAGE_ACCOUNT_KEY", kKey}}), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->endpoint, "https://acct.blob.core.windows.net");
  EXPECT_EQ(c->account_key, kKey);
}

TEST(AzureConfigTest, TheEmulatorDefaultsToAzuritesAccountAndUrl) {
  auto c = azure_config_from(options({{"AZURE_STORAGE_USE_EMULATOR", "true"},
                                      {"AZURITE_BLOB_STORAGE_URL", "http://127.0.0.1:10123/"}}),
                             "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->account, "devstoreaccount1");
  EXPECT_EQ(c->endpoint, "http://127.0.0.1:10123/devstoreaccount1");
  EXPECT_TRUE(c->allow_http);
  EXPECT_FALSE(c->account_key.empty());
}

TEST(AzureConfigTest, ConnectionStringFillsWhatTheKeysLeaveOpen) {
  auto c = azure_config_from(
      options({{"AZURE_STORAGE_CONNECTION_STRING",
                std::string("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=") + kKey +
                    ";EndpointSuffix=core.chinacloudapi.cn"}}),
      "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->account, "acct");
  EXPECT_EQ(c->endpoint, "https://acct.blob.core.chinacloudapi.cn");
  auto sas = azure_config_from(
      options({{"AZURE_STORAGE_CONNECTION_STRING",
                "BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=2021-12-02&sig=abc"},
               {"AZURE_STORAGE_ACCOUNT_NAME", "acct"}}),
      "");
  ASSERT_TRUE(sas.ok()) << sas.status();
  EXPECT_EQ(sas->sas_token, "sv=2021-12-02&sig=abc");
  EXPECT_EQ(sas->endpoint, "https://acct.blob.core.windows.net");
}

TEST(AzureConfigTest, RefusalsSayWhatToSetAndNeverEchoTheKey) {
  struct Case {
    std::map<std::string, std::string> given;
    std::string uri_account, message;
  };
  for (const auto& c : std::vector<Case>{
           {{{"AZURE_STORAGE_ACCOUNT_KEY", kKey}}, "", "no Azure storage account: set AZURE_STORAGE_ACCOUNT_NAME"},
           {{{"AZURE_STORAGE_ACCOUNT_NAME", "acct"}}, "", "no Azure credentials for account 'acct'"},
           {{{"AZURE_STORAGE_ACCOUNT_NAME", "acct"}, {"AZURE_STORAGE_ACCOUNT_KEY", "secret-account-key-value!"}},
            "", "is not base64"},
           {{{"AZURE_STORAGE_ACCOUNT_KEY", kKey}, {"AZURE_STORAGE_ENDPOINT", "http://127.0.0.1:1/acct"}},
            "acct", "is plain http: set AZURE_ALLOW_HTTP=true"},
           {{{"AZURE_STORAGE_ACCOUNT_KEY", kKey}, {"AZURE_STORAGE_ACCOUNT_NAME", "one"}},
            "two", "names account 'two' but AZURE_STORAGE_ACCOUNT_NAME (or the connection string) says 'one'"},
           {{{"AZURE_STORAGE_ACCOUNT_KEY", kKey}, {"AZURE_STORAGE_USE_EMULATOR", "maybe"}},
            "", "AZURE_STORAGE_USE_EMULATOR is 'maybe'; write true or false"}}) {
    auto r = azure_config_from(options(c.given), c.uri_account);
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_NE(r.status().message().find(c.message), std::string::npos) << r.status();
    EXPECT_EQ(r.status().message().find(kKey), std::string::npos);
    EXPECT_EQ(r.status().message().find("secret-account-key-value"), std::string::npos);
  }
}

TEST(AzureClientHelpersTest, ErrorTextTakesTheCodeAndTheMessagesFirstLine) {
  AzureResponse r;
  r.status = 409;
  r.body = "<?xml version=\"1.0\"?><Error><Code>BlobAlreadyExists</Code><Message>The specified blob already "
           "exists.\nRequestId:1</Message></Error>";
  EXPECT_EQ(azure_error_code(r), "BlobAlreadyExists");
  EXPECT_EQ(azure_error_text(r), "HTTP 409 BlobAlreadyExists: The specified blob already exists.");
  r.headers["x-ms-error-code"] = "ConditionNotMet";
  EXPECT_EQ(azure_error_code(r), "ConditionNotMet");
}

}  // namespace
}  // namespace sluice::storage
