// Azure AD (Microsoft Entra ID) access tokens for Azure Storage: the OAuth2 client-credentials
// flow of a service principal (tenant, client id, and a client secret or a federated token file:
// workload identity, the token as client_assertion, read again at each fetch) at
// {authority host}/{tenant}/oauth2/v2.0/token, scope https://storage.azure.com/.default, cached
// and fetched again at half its lifetime. sluice's own Blob requests (azure_client) send the
// token as "Authorization: Bearer"; Arrow's AzureFileSystem gets the same identity
// (azure_store.cc) and fetches its tokens through the Azure SDK.
#pragma once

#include <arrow/result.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace sluice::storage {

// A service principal. Secrets stay in here: no message prints client_secret or the token file's
// content.
struct AzureAdIdentity {
  std::string tenant_id;
  std::string client_id;
  std::string client_secret;
  std::string federated_token_file;  // used when client_secret is empty
  // https only, no trailing '/': the Azure SDK refuses to send a secret anywhere else.
  std::string authority_host = "https://login.microsoftonline.com";
};

// "{authority_host}/{tenant_id}/oauth2/v2.0/token".
std::string azure_token_url(const AzureAdIdentity& identity);

struct AzureToken {
  std::string access_token;
  int64_t expires_unix = 0;
};

// Thread-safe: mutex_ guards current_, fetched_unix_ and fetches_.
class AzureTokenProvider {
 public:
  // Fetches the first token, so that a wrong secret is reported when the store is opened: the
  // error names the token URL, the client id, tenant and the settings to check, never the secret.
  static arrow::Result<std::shared_ptr<AzureTokenProvider>> Make(AzureAdIdentity identity);
  // The current token, fetched again once half its lifetime has passed (a failed refresh keeps
  // the old token while it is valid: the next request retries).
  arrow::Result<AzureToken> get();
  int64_t fetches() const;

 private:
  explicit AzureTokenProvider(AzureAdIdentity identity) : identity_(std::move(identity)) {}
  arrow::Result<AzureToken> fetch() const;

  const AzureAdIdentity identity_;
  mutable std::mutex mutex_;
  AzureToken current_;        // guarded by mutex_
  int64_t fetched_unix_ = 0;  // guarded by mutex_
  int64_t fetches_ = 0;       // guarded by mutex_
};

}  // namespace sluice::storage
