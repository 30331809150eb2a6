// The GCS JSON API requests Arrow's GcsFileSystem cannot send: the commit of a Delta version as
// an upload with ifGenerationMatch=0 (create only if absent), listings from startOffset, and
// small GET/DELETE/uploads of log objects. Sent with libcurl; authorised with an OAuth2 access
// token, or not at all against an emulator.
#pragma once

#include <arrow/result.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/storage/gcs_credentials.h"

namespace sluice::storage {

// Where and as whom GCS is reached. The token stays in here: no message prints it.
struct GcsConfig {
  // "https://storage.googleapis.com", or the emulator's "http://host:port"
  // (STORAGE_EMULATOR_HOST), no trailing '/'.
  std::string endpoint = "https://storage.googleapis.com";
  bool emulator = false;
  // GOOGLE_OAUTH_ACCESS_TOKEN; "" sends no Authorization header (an emulator only).
  std::string access_token;
  // A service-account key (GOOGLE_SERVICE_ACCOUNT_KEY, GOOGLE_SERVICE_ACCOUNT,
  // GOOGLE_APPLICATION_CREDENTIALS): tokens made from it instead of access_token.
  std::optional<GcsServiceAccount> service_account;
};

// From `options` (normalized keys) over the environment. A service-account key is parsed and
// checked here (no request yet); refuses two explicit credentials at once (an access token and
// a key, or two keys), and real GCS without any, saying what to set.
arrow::Result<GcsConfig> gcs_config_from(const std::map<std::string, std::string>& options);

struct GcsResponse {
  long status = 0;
  std::string body;
};

class GcsClient {
 public:
  // `tokens` (null without a service-account key) makes the bearer token of each request.
  GcsClient(GcsConfig config, std::shared_ptr<GcsTokenProvider> tokens);
  const GcsConfig& config() const { return config_; }
  // The bearer token for the next request ("" for none).
  arrow::Result<GcsToken> token() const;

  // One request to `target` ("/storage/v1/b/..." with its query, already encoded), for
  // messages about `what` ("gs://bucket/key"). `headers` are "Name: value" lines. A transport
  // failure is a retryable IOError naming the endpoint; any HTTP status is returned for the
  // caller to judge.
  arrow::Result<GcsResponse> send(const std::string& method, const std::string& target,
                                  const std::string& body, const std::vector<std::string>& headers,
                                  const std::string& what) const;

 private:
  GcsConfig config_;
  std::shared_ptr<GcsTokenProvider> tokens_;
};

// GCS's JSON error body as "HTTP <status>: <message>" (or the status alone).
std::string gcs_error_text(const GcsResponse& response);
// An object name or query value percent-encoded for a JSON API URL ('/' encoded too).
std::string gcs_encode(const std::string& s);
// A multipart/related body (metadata naming `object`, then `content`) for an upload with
// uploadType=multipart, and its boundary, which never occurs in `content`.
std::pair<std::string, std::string> gcs_multipart_body(const std::string& object, const std::string& content);
// RFC 3339 ("2026-12-06T09:20:39.235218Z") -> epoch nanoseconds; 0 when unparsable.
int64_t rfc3339_nanos(const std::string& text);

}  // namespace sluice::storage
