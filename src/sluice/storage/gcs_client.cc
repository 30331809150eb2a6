// libcurl requests to the GCS JSON API (gcs_client.h).
#include "sluice/storage/gcs_client.h"

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <ctime>
#include <memory>
#include <mutex>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/storage/http_util.h"

namespace sluice::storage {

arrow::Result<GcsConfig> gcs_config_from(const std::map<std::string, std::string>& options) {
  auto get = [&](const char* key) {
    auto it = options.find(key);
    return it != options.end() ? it->second : env_or_empty(key);
  };
  // Refused rather than half-used: Arrow could read data files with them, but the commit
  // request (sent here, not by Arrow) needs an access token made from the key.
  for (const char* key : {"GOOGLE_SERVICE_ACCOUNT", "GOOGLE_SERVICE_ACCOUNT_KEY", "GOOGLE_APPLICATION_CREDENTIALS"}) {
    if (!get(key).empty()) {
      return arrow::Status::NotImplemented(fmt::format(
          "GCS credentials from a service account ({} is set) are not supported yet: sluice "
          "commits a Delta version with its own upload request (ifGenerationMatch=0, which Arrow's "
          "GcsFileSystem cannot send), and cannot yet make the OAuth2 access token that request "
          "needs from a key; unset {} and set GOOGLE_OAUTH_ACCESS_TOKEN (for example from `gcloud "
          "auth print-access-token`) instead",
          key, key));
    }
  }
  GcsConfig c;
  c.access_token = get("GOOGLE_OAUTH_ACCESS_TOKEN");
  std::string host = get("STORAGE_EMULATOR_HOST");
  if (!host.empty()) {
    c.emulator = true;
    // Google's clients take "host:port" or a URL.
    c.endpoint = host.find("://") == std::string::npos ? "http://" + host : host;
    while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
    if (c.endpoint.rfind("http://", 0) != 0 && c.endpoint.rfind("https://", 0) != 0) {
      return invalid("STORAGE_EMULATOR_HOST '{}' must be host:port or start with http:// or https://", host);
    }
    const auto path = c.endpoint.find('/', c.endpoint.find("://") + 3);
    if (path != std::string::npos) {
      return invalid("STORAGE_EMULATOR_HOST '{}' has a path; give only scheme, host and port", host);
    }
  } else if (c.access_token.empty()) {
    return invalid("no GCS credentials: set GOOGLE_OAUTH_ACCESS_TOKEN (for example from `gcloud auth "
                   "print-access-token`) in the environment or storage_options, or "
                   "STORAGE_EMULATOR_HOST=host:port to use a GCS emulator");
  }
  return c;
}

GcsClient::GcsClient(GcsConfig config) : config_(std::move(config)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

arrow::Result<GcsResponse> GcsClient::send(const std::string& method, const std::string& target,
                                           const std::string& body, const std::vector<std::string>& headers,
                                           const std::string& what) const {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return io_error("cannot start an HTTP request to {} (curl_easy_init failed)", config_.endpoint);
  const std::string url = config_.endpoint + target;
  GcsResponse response;
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  if (!config_.access_token.empty()) {
    list = curl_slist_append(list, ("Authorization: Bearer " + config_.access_token).c_str());
  }
  list = curl_slist_append(list, "Expect:");
  std::unique_ptr<curl_slist, SlistDeleter> header_list(list);
  CURL* c = curl.get();
  // Plain http only to an emulator the user named: a token never travels unencrypted to GCS.
  curl_prepare(c, url, config_.emulator, &response.body, nullptr);
  curl_set_method(c, method, body, method == "POST");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list.get());
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return mark_retryable(io_error("GCS {} {}: cannot reach {}: {} (is the endpoint right and the "
                                   "server running? check STORAGE_EMULATOR_HOST for an emulator)",
                                   method, what, config_.endpoint, curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

std::string gcs_error_text(const GcsResponse& response) {
  std::string out = fmt::format("HTTP {}", response.status);
  auto json = nlohmann::json::parse(response.body, nullptr, false);
  if (json.is_object() && json.contains("error") && json["error"].is_object()) {
    const auto& error = json["error"];
    if (error.contains("message") && error["message"].is_string()) {
      out += ": " + error["message"].get<std::string>();
    }
  }
  return out;
}

std::string gcs_encode(const std::string& s) { return percent_encode(s); }

std::pair<std::string, std::string> gcs_multipart_body(const std::string& object, const std::string& content) {
  std::string boundary = "sluice-part-boundary-7f3a9c";
  while (content.find(boundary) != std::string::npos) boundary += "x";
  const nlohmann::json metadata = {{"name", object}};
  std::string body;
  body.reserve(content.size() + object.size() + 256);
  body += "--" + boundary + "\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n";
  body += metadata.dump();
  body += "\r\n--" + boundary + "\r\nContent-Type: application/octet-stream\r\n\r\n";
  body += content;
  body += "\r\n--" + boundary + "--\r\n";
  return {std::move(body), std::move(boundary)};
}

int64_t rfc3339_nanos(const std::string& text) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) < 6) {
    return 0;
  }
  int64_t fraction = 0;
  size_t pos = static_cast<size_t>(consumed);
  if (pos < text.size() && text[pos] == '.') {
    int digits = 0;
    for (++pos; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos) {
      if (digits++ < 9) fraction = fraction * 10 + (text[pos] - '0');
    }
    for (; digits < 9; ++digits) fraction *= 10;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1'000'000'000 + fraction;
}

}  // namespace sluice::storage
