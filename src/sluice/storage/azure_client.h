// The Azure Blob REST requests Arrow's AzureFileSystem cannot send: Put Blob with
// If-None-Match: * (the commit of a Delta version), and the small GET/HEAD/DELETE/PUT and
// List Blobs of log objects. Sent with libcurl, signed with the account key (SharedKey:
// HMAC-SHA256, OpenSSL), authorised by a SAS token or by an Azure AD token (Bearer,
// azure_credentials.h). https endpoints are verified against the system store and, when set,
// SSL_CERT_FILE / SSL_CERT_DIR (as Arrow's Azure SDK does).
#pragma once

#include <arrow/result.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sluice/storage/azure_credentials.h"

namespace sluice::storage {

// Where and as whom Azure Blob Storage is reached. Secrets stay in here: no message prints them.
struct AzureConfig {
  // The account's blob service URL, no trailing '/': "https://<account>.blob.core.windows.net",
  // or path-style with the account as first path segment (Azurite):
  // "http://127.0.0.1:10000/devstoreaccount1".
  std::string endpoint;
  std::string account;
  std::string account_key;  // base64, as the portal shows it; "" with a SAS token
  std::string sas_token;    // without the leading '?'
  // A service principal (Azure AD client credentials): used when it has a client secret or a
  // federated token file, then account_key and sas_token are empty and the endpoint is https.
  AzureAdIdentity ad;
  bool allow_http = false;

  bool uses_ad() const { return !ad.client_secret.empty() || !ad.federated_token_file.empty(); }
};

// From `options` (normalized keys, location.h) over the AZURE_STORAGE_* environment, for the
// account named by the URI (`uri_account`, "" for az://). Order: explicit keys, then a
// connection string's fields, then AZURE_STORAGE_USE_EMULATOR's defaults (devstoreaccount1, its
// public key, AZURITE_BLOB_STORAGE_URL or http://127.0.0.1:10000). A service principal
// (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_AUTHORITY_HOST) when no key or SAS
// token is given; workload identity (AZURE_FEDERATED_TOKEN_FILE instead of the secret) when
// neither a key, a SAS token, a secret nor the emulator is (an ambient setting, as AKS injects
// it). Credentials in `options` win over the environment's (a key or SAS token in options over an
// AZURE_CLIENT_SECRET in the environment, and the reverse); the emulator wins over a client
// secret that only the environment names. Refuses a missing account or credentials, a key that is
// not base64, a plain-http endpoint without AZURE_ALLOW_HTTP=true (or the emulator), a client
// secret beside a key or SAS token from the same source, an incomplete service principal and one
// over plain http, and an authority host (workload identity: also tenant, client id, token file)
// in `options` that differs from the environment, which is where Arrow's Azure SDK reads it,
// saying what to set.
arrow::Result<AzureConfig> azure_config_from(const std::map<std::string, std::string>& options,
                                             const std::string& uri_account);

// The value of an environment variable, "" when unset.
using AzureEnvironment = std::function<std::string(const char*)>;
// The same with `env` as the environment (tests).
arrow::Result<AzureConfig> azure_config_from(const std::map<std::string, std::string>& options,
                                             const std::string& uri_account, const AzureEnvironment& env);

struct AzureResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// Query parameters, not encoded; the client encodes them and signs them sorted by name.
using AzureQuery = std::vector<std::pair<std::string, std::string>>;

class AzureClient {
 public:
  // `tokens` is required when config.uses_ad() (Bearer), ignored otherwise.
  AzureClient(AzureConfig config, std::shared_ptr<AzureTokenProvider> tokens);
  const AzureConfig& config() const { return config_; }

  // One request to container/blob (blob may be ""). `headers` are "Name: value" lines; x-ms-*
  // ones and If-None-Match are signed. A transport failure (no connection) is a retryable
  // IOError naming the endpoint; any HTTP status is returned for the caller to judge.
  arrow::Result<AzureResponse> send(const std::string& method, const std::string& container,
                                    const std::string& blob, const AzureQuery& query,
                                    const std::string& body, const std::vector<std::string>& headers) const;

 private:
  AzureConfig config_;
  std::string key_bytes_;  // the decoded account key
  std::shared_ptr<AzureTokenProvider> tokens_;
};

// Azure's error as "HTTP <status> <Code>: <first line of Message>".
std::string azure_error_text(const AzureResponse& response);
// The x-ms-error-code of a response ("" when absent), from the header or the body's <Code>.
std::string azure_error_code(const AzureResponse& response);

}  // namespace sluice::storage
