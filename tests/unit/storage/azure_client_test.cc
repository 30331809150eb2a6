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
                          "AZURE_STORAGE_CONNECTION_STRING", "AZURITE_BLOB_STORAGE_URL", "AZURE_CLIENT_ID",
                          "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_AUTHORITY_HOST", "AZURE_FEDERATED_TOKEN_FILE"}) {
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

constexpr const char* kSecret = "client-s3cr3t-never-shown";

std::map<std::string, std::string> service_principal(std::map<std::string, std::string> more) {
  more.emplace("AZURE_STORAGE_ACCOUNT_NAME", "acct");
  more.emplace("AZURE_TENANT_ID", "tenant-1");
  more.emplace("AZURE_CLIENT_ID", "app-1");
  more.emplace("AZURE_CLIENT_SECRET", kSecret);
  return options(std::move(more));
}

TEST(AzureConfigTest, AServicePrincipalIsUsedWhenNoKeyOrSasTokenIsGiven) {
  auto c = azure_config_from(service_principal({}), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->uses_ad());
  EXPECT_TRUE(c->account_key.empty());
  EXPECT_EQ(c->endpoint, "https://acct.blob.core.windows.net");
  EXPECT_EQ(azure_token_url(c->ad), "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token");
  auto sovereign = azure_config_from(service_principal({{"AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/"}}), "");
  ASSERT_TRUE(sovereign.ok()) << sovereign.status();
  EXPECT_EQ(azure_token_url(sovereign->ad), "https://login.microsoftonline.us/tenant-1/oauth2/v2.0/token");
  // The emulator's well-known key does not replace the service principal (Azurite over https).
  auto azurite = azure_config_from(service_principal({{"AZURE_STORAGE_USE_EMULATOR", "true"},
                                                      {"AZURITE_BLOB_STORAGE_URL", "https://127.0.0.1:10443"}}),
                                   "");
  ASSERT_TRUE(azurite.ok()) << azurite.status();
  EXPECT_TRUE(azurite->uses_ad());
  EXPECT_TRUE(azurite->account_key.empty());
}

TEST(AzureConfigTest, AFederatedTokenFileRanksBelowEveryExplicitCredential) {
  auto workload = azure_config_from(
      service_principal({{"AZURE_CLIENT_SECRET", ""}, {"AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"}}), "");
  ASSERT_TRUE(workload.ok()) << workload.status();
  EXPECT_TRUE(workload->uses_ad());
  EXPECT_EQ(workload->ad.federated_token_file, "/var/run/token");
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"AZURE_CLIENT_SECRET", kSecret}, {"AZURE_STORAGE_ACCOUNT_KEY", kKey}, {"AZURE_STORAGE_SAS_TOKEN", "sv=1"}}) {
    std::map<std::string, std::string> given = {{"AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"},
                                                {"AZURE_CLIENT_SECRET", ""}};
    given[key] = value;
    auto c = azure_config_from(service_principal(given), "");
    ASSERT_TRUE(c.ok()) << key << ": " << c.status();
    EXPECT_TRUE(c->ad.federated_token_file.empty()) << key;
  }
}

TEST(AzureConfigTest, ServicePrincipalRefusalsSayWhatToSetAndNeverEchoTheSecret) {
  struct Case {
    std::map<std::string, std::string> more;
    std::string message;
  };
  for (const auto& c : std::vector<Case>{
           {{{"AZURE_STORAGE_ACCOUNT_KEY", kKey}}, "both AZURE_STORAGE_ACCOUNT_KEY and AZURE_CLIENT_SECRET"},
           {{{"AZURE_STORAGE_SAS_TOKEN", "sv=1&sig=x"}}, "both AZURE_STORAGE_SAS_TOKEN and AZURE_CLIENT_SECRET"},
           {{{"AZURE_TENANT_ID", ""}}, "AZURE_CLIENT_SECRET is set for Azure account 'acct' but AZURE_TENANT_ID is not"},
           {{{"AZURE_CLIENT_ID", ""}}, "but AZURE_CLIENT_ID is not"},
           {{{"AZURE_AUTHORITY_HOST", "http://127.0.0.1:1"}}, "AZURE_AUTHORITY_HOST 'http://127.0.0.1:1' must be an https:// URL"},
           {{{"AZURE_STORAGE_ENDPOINT", "http://127.0.0.1:1/acct"}, {"AZURE_ALLOW_HTTP", "true"}},
            "is plain http: Azure AD tokens (AZURE_CLIENT_SECRET) are sent only over https"}}) {
    auto r = azure_config_from(service_principal(c.more), "");
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_NE(r.status().message().find(c.message), std::string::npos) << r.status();
    EXPECT_EQ(r.status().message().find(kSecret), std::string::npos);
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
