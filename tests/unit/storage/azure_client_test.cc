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

// azure_config_from with `env` as the whole process environment (hermetic: the test's own
// environment never leaks in).
arrow::Result<AzureConfig> config_from(const std::map<std::string, std::string>& given, const std::string& uri_account,
                                       std::map<std::string, std::string> env = {}) {
  return azure_config_from(given, uri_account, [env](const char* key) {
    auto it = env.find(key);
    return it == env.end() ? std::string() : it->second;
  });
}

TEST(AzureConfigTest, AccountAndKeyGiveTheDefaultEndpoint) {
  auto c = config_from(options({{"AZURE_STORAGE_ACCOUNT_NAME", "acct"}, {"AZURE_STORAGE_ACCOUNT_KEY", kKey}}), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->endpoint, "https://acct.blob.core.windows.net");
  EXPECT_EQ(c->account_key, kKey);
}

TEST(AzureConfigTest, TheEmulatorDefaultsToAzuritesAccountAndUrl) {
  auto c = config_from(options({{"AZURE_STORAGE_USE_EMULATOR", "true"},
                                      {"AZURITE_BLOB_STORAGE_URL", "http://127.0.0.1:10123/"}}),
                             "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->account, "devstoreaccount1");
  EXPECT_EQ(c->endpoint, "http://127.0.0.1:10123/devstoreaccount1");
  EXPECT_TRUE(c->allow_http);
  EXPECT_FALSE(c->account_key.empty());
}

TEST(AzureConfigTest, ConnectionStringFillsWhatTheKeysLeaveOpen) {
  auto c = config_from(
      options({{"AZURE_STORAGE_CONNECTION_STRING",
                std::string("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=") + kKey +
                    ";EndpointSuffix=core.chinacloudapi.cn"}}),
      "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->account, "acct");
  EXPECT_EQ(c->endpoint, "https://acct.blob.core.chinacloudapi.cn");
  auto sas = config_from(
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
    auto r = config_from(options(c.given), c.uri_account);
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
  auto c = config_from(service_principal({}), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->uses_ad());
  EXPECT_TRUE(c->account_key.empty());
  EXPECT_EQ(c->endpoint, "https://acct.blob.core.windows.net");
  EXPECT_EQ(azure_token_url(c->ad), "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token");
  auto sovereign = config_from(service_principal({{"AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/"}}), "",
                               {{"AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us"}});
  ASSERT_TRUE(sovereign.ok()) << sovereign.status();
  EXPECT_EQ(azure_token_url(sovereign->ad), "https://login.microsoftonline.us/tenant-1/oauth2/v2.0/token");
  // The emulator's well-known key does not replace the service principal (Azurite over https).
  auto azurite = config_from(service_principal({{"AZURE_STORAGE_USE_EMULATOR", "true"},
                                                      {"AZURITE_BLOB_STORAGE_URL", "https://127.0.0.1:10443"}}),
                                   "");
  ASSERT_TRUE(azurite.ok()) << azurite.status();
  EXPECT_TRUE(azurite->uses_ad());
  EXPECT_TRUE(azurite->account_key.empty());
}

TEST(AzureConfigTest, AFederatedTokenFileRanksBelowEveryExplicitCredential) {
  auto workload = config_from(
      service_principal({{"AZURE_CLIENT_SECRET", ""}, {"AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"}}), "",
      {{"AZURE_TENANT_ID", "tenant-1"}, {"AZURE_CLIENT_ID", "app-1"}, {"AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"}});
  ASSERT_TRUE(workload.ok()) << workload.status();
  EXPECT_TRUE(workload->uses_ad());
  EXPECT_EQ(workload->ad.federated_token_file, "/var/run/token");
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"AZURE_CLIENT_SECRET", kSecret}, {"AZURE_STORAGE_ACCOUNT_KEY", kKey}, {"AZURE_STORAGE_SAS_TOKEN", "sv=1"}}) {
    std::map<std::string, std::string> given = {{"AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"},
                                                {"AZURE_CLIENT_SECRET", ""}};
    given[key] = value;
    auto c = config_from(service_principal(given), "");
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
    auto r = config_from(service_principal(c.more), "");
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_NE(r.status().message().find(c.message), std::string::npos) << r.status();
    EXPECT_EQ(r.status().message().find(kSecret), std::string::npos);
  }
}

// Only the keys given: the rest comes from the environment passed to config_from.
const std::map<std::string, std::string> kAmbientPrincipal = {
    {"AZURE_TENANT_ID", "tenant-1"}, {"AZURE_CLIENT_ID", "app-1"}, {"AZURE_CLIENT_SECRET", kSecret}};

std::map<std::string, std::string> with(std::map<std::string, std::string> base,
                                        const std::map<std::string, std::string>& more) {
  for (const auto& [k, v] : more) base[k] = v;
  return base;
}

TEST(AzureConfigTest, StorageOptionsCredentialsWinOverTheEnvironmentsAndTheEmulatorOverAnAmbientSecret) {
  // A key or SAS token in storage_options beside a service principal in the environment: the key.
  auto keyed = config_from({{"AZURE_STORAGE_ACCOUNT_NAME", "acct"}, {"AZURE_STORAGE_ACCOUNT_KEY", kKey}}, "",
                           kAmbientPrincipal);
  ASSERT_TRUE(keyed.ok()) << keyed.status();
  EXPECT_FALSE(keyed->uses_ad());
  EXPECT_EQ(keyed->account_key, kKey);
  auto sas = config_from({{"AZURE_STORAGE_ACCOUNT_NAME", "acct"}, {"AZURE_STORAGE_SAS_TOKEN", "sv=1&sig=x"}}, "",
                         kAmbientPrincipal);
  ASSERT_TRUE(sas.ok()) << sas.status();
  EXPECT_FALSE(sas->uses_ad());
  auto from_connection_string = config_from(
      {{"AZURE_STORAGE_CONNECTION_STRING", std::string("AccountName=acct;AccountKey=") + kKey}}, "", kAmbientPrincipal);
  ASSERT_TRUE(from_connection_string.ok()) << from_connection_string.status();
  EXPECT_FALSE(from_connection_string->uses_ad());
  // A secret in storage_options beside a key in the environment: the service principal.
  auto principal = config_from({{"AZURE_STORAGE_ACCOUNT_NAME", "acct"}, {"AZURE_TENANT_ID", "tenant-1"},
                                {"AZURE_CLIENT_ID", "app-1"}, {"AZURE_CLIENT_SECRET", kSecret}},
                               "", {{"AZURE_STORAGE_ACCOUNT_KEY", kKey}});
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_TRUE(principal->uses_ad());
  EXPECT_TRUE(principal->account_key.empty());
  // The emulator (either source) beside a secret only the environment names: Azurite's key.
  for (const auto& [given, env] : std::vector<std::pair<std::map<std::string, std::string>, std::map<std::string, std::string>>>{
           {{{"AZURE_STORAGE_USE_EMULATOR", "true"}}, kAmbientPrincipal},
           {{}, with(kAmbientPrincipal, {{"AZURE_STORAGE_USE_EMULATOR", "true"}})},
           {{{"AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true"}}, kAmbientPrincipal}}) {
    auto emulator = config_from(given, "", env);
    ASSERT_TRUE(emulator.ok()) << emulator.status();
    EXPECT_FALSE(emulator->uses_ad());
    EXPECT_EQ(emulator->account, "devstoreaccount1");
    EXPECT_FALSE(emulator->account_key.empty());
  }
  // A secret in storage_options with the emulator from the environment: the service principal.
  auto azurite = config_from({{"AZURE_TENANT_ID", "tenant-1"}, {"AZURE_CLIENT_ID", "app-1"}, {"AZURE_CLIENT_SECRET", kSecret},
                              {"AZURITE_BLOB_STORAGE_URL", "https://127.0.0.1:10443"}},
                             "", {{"AZURE_STORAGE_USE_EMULATOR", "true"}});
  ASSERT_TRUE(azurite.ok()) << azurite.status();
  EXPECT_TRUE(azurite->uses_ad());
}

TEST(AzureConfigTest, ASecretBesideAKeyFromTheSameSourceIsRefused) {
  auto env = config_from({{"AZURE_STORAGE_ACCOUNT_NAME", "acct"}}, "",
                         with(kAmbientPrincipal, {{"AZURE_STORAGE_ACCOUNT_KEY", kKey}}));
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.status().message().find("both AZURE_STORAGE_ACCOUNT_KEY and AZURE_CLIENT_SECRET (a service principal) "
                                        "are set in the environment for Azure account 'acct'"),
            std::string::npos)
      << env.status();
  auto options = config_from(with(kAmbientPrincipal, {{"AZURE_STORAGE_ACCOUNT_NAME", "acct"},
                                                      {"AZURE_STORAGE_SAS_TOKEN", "sv=1&sig=x"}}),
                             "", {});
  ASSERT_FALSE(options.ok());
  EXPECT_NE(options.status().message().find("both AZURE_STORAGE_SAS_TOKEN and AZURE_CLIENT_SECRET (a service principal) "
                                            "are set in storage_options"),
            std::string::npos)
      << options.status();
  for (const auto& r : {env, options}) {
    EXPECT_EQ(r.status().message().find(kSecret), std::string::npos);
    EXPECT_EQ(r.status().message().find(kKey), std::string::npos);
  }
}

TEST(AzureConfigTest, AnAuthorityHostOrWorkloadIdentityOptionMustAgreeWithTheEnvironment) {
  // Arrow's Azure SDK reads these only from the environment: a different storage option is refused.
  auto differs = config_from(service_principal({{"AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us"}}), "");
  ASSERT_FALSE(differs.ok());
  EXPECT_NE(differs.status().message().find(
                "storage option azure_authority_host ('https://login.microsoftonline.us') for Azure account 'acct' "
                "differs from AZURE_AUTHORITY_HOST in sluice's environment (not set: the SDK uses "
                "https://login.microsoftonline.com)"),
            std::string::npos)
      << differs.status();
  EXPECT_NE(differs.status().message().find("set AZURE_AUTHORITY_HOST=https://login.microsoftonline.us in sluice's "
                                            "environment"),
            std::string::npos)
      << differs.status();
  EXPECT_EQ(differs.status().message().find(kSecret), std::string::npos);
  auto other = config_from(service_principal({{"AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us"}}), "",
                           {{"AZURE_AUTHORITY_HOST", "https://login.chinacloudapi.cn/"}});
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("(https://login.chinacloudapi.cn)"), std::string::npos) << other.status();
  // Only in the environment, or the default in both: nothing to compare.
  auto ambient = config_from(service_principal({}), "", {{"AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us"}});
  ASSERT_FALSE(ambient.ok());  // service_principal() gives AZURE_AUTHORITY_HOST "" in options: the default
  std::map<std::string, std::string> no_host = service_principal({});
  no_host.erase("AZURE_AUTHORITY_HOST");
  auto from_env = config_from(no_host, "", {{"AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us"}});
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_EQ(from_env->ad.authority_host, "https://login.microsoftonline.us");
  ASSERT_TRUE(config_from(service_principal({}), "").ok());
  // Workload identity: tenant, client id and token file too.
  auto workload = config_from(
      service_principal({{"AZURE_CLIENT_SECRET", ""}, {"AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"}}), "",
      {{"AZURE_TENANT_ID", "tenant-2"}, {"AZURE_CLIENT_ID", "app-1"}, {"AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"}});
  ASSERT_FALSE(workload.ok());
  EXPECT_NE(workload.status().message().find("storage option azure_tenant_id ('tenant-1') for Azure account 'acct' "
                                             "differs from AZURE_TENANT_ID in sluice's environment (tenant-2)"),
            std::string::npos)
      << workload.status();
  // A client secret is passed to the SDK explicitly: its tenant and client id may differ.
  ASSERT_TRUE(config_from(service_principal({}), "", {{"AZURE_TENANT_ID", "tenant-2"}}).ok());
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
