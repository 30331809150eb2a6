// GCS access tokens made from a service-account JSON key: the OAuth2 JWT bearer flow (RFC 7523,
// the assertion signed RS256 with the key's private half by OpenSSL) at the key's token_uri,
// refreshed before expiry. One provider per GCS store serves both request paths (sluice's JSON
// API client and Arrow's GcsFileSystem).
#pragma once

#include <arrow/result.h>

#include <cstdint>
#include <memory>
#include <string>

#include "sluice/storage/refreshing_cache.h"

namespace sluice::storage {

// The fields of a key file sluice uses. Secrets stay in here: no message prints them.
struct GcsServiceAccount {
  std::string client_email;
  std::string private_key;  // PEM
  std::string private_key_id;
  std::string token_uri = "https://oauth2.googleapis.com/token";
  // object_store's (delta-rs's) extension for emulators: send no token at all.
  bool disable_oauth = false;
  // object_store's gcs_base_url ("" when absent): must be the endpoint sluice reaches (gcs_client.h).
  std::string base_url;
  // Which setting gave it, for messages ("GOOGLE_APPLICATION_CREDENTIALS (/path/key.json)").
  std::string source;
};

// Parses a key file's JSON. `source` names the setting (and file) in messages; the key's
// content never appears in them. Refuses JSON that is not a service-account key (an
// authorized_user or external_account file: not supported yet), missing fields, and a plain-http
// token_uri to a host other than the loopback.
arrow::Result<GcsServiceAccount> parse_gcs_service_account(const std::string& json, const std::string& source);

// The signed JWT assertion (header.claims.signature, base64url) asking `scope` for `account`,
// issued at `now_unix` for an hour.
arrow::Result<std::string> gcs_jwt_assertion(const GcsServiceAccount& account, const std::string& scope,
                                             int64_t now_unix);

struct GcsToken {
  std::string access_token;
  int64_t expires_unix = 0;  // 0: never (a token given as is)
};

// Thread-safe: any thread may call get() (the cache guards the token).
class GcsTokenProvider {
 public:
  // Fetches the first token: an error here names the key's source and its token_uri.
  static arrow::Result<std::shared_ptr<GcsTokenProvider>> Make(GcsServiceAccount account);
  // The current token, fetched again once less than half its lifetime (at most 5 minutes) is left.
  arrow::Result<GcsToken> get();
  int64_t fetches() const;

 private:
  explicit GcsTokenProvider(GcsServiceAccount account) : account_(std::move(account)) {}
  arrow::Result<GcsToken> fetch() const;

  const GcsServiceAccount account_;
  RefreshingCache<GcsToken> cache_;
};

}  // namespace sluice::storage
