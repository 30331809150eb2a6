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
  // An explicit key, the key file named, then Application Default Credentials' file.
  GcsConfig c;
  const std::string json_key = get("GOOGLE_SERVICE_ACCOUNT_KEY"), key_path = get("GOOGLE_SERVICE_ACCOUNT");
  const std::string adc_path = get("GOOGLE_APPLICATION_CREDENTIALS"), token = get("GOOGLE_OAUTH_ACCESS_TOKEN");
  if (!json_key.empty() && !key_path.empty()) {
    return invalid("both GOOGLE_SERVICE_ACCOUNT_KEY and GOOGLE_SERVICE_ACCOUNT are set; set one GCS service-account key");
  }
  if (!token.empty() && (!json_key.empty() || !key_path.empty())) {
    return invalid("both GOOGLE_OAUTH_ACCESS_TOKEN and {} are set; set one of them",
                   json_key.empty() ? "GOOGLE_SERVICE_ACCOUNT" : "GOOGLE_SERVICE_ACCOUNT_KEY");
  }
  if (!json_key.empty()) {
    ARROW_ASSIGN_OR_RAISE(c.service_account, parse_gcs_service_account(json_key, "GOOGLE_SERVICE_ACCOUNT_KEY"));
  } else if (!key_path.empty() || (token.empty() && !adc_path.empty())) {
    const char* setting = key_path.empty() ? "GOOGLE_APPLICATION_CREDENTIALS" : "GOOGLE_SERVICE_ACCOUNT";
    const std::string& path = key_path.empty() ? adc_path : key_path;
    if (const auto first = path.find_first_not_of(" \t\r\n"); first != std::string::npos && path[first] == '{') {
      return invalid("{} holds JSON, not the path of a key file: give the key's JSON as "
                     "GOOGLE_SERVICE_ACCOUNT_KEY, or the path of the file as {}",
                     setting, setting);
    }
    ARROW_ASSIGN_OR_RAISE(auto text, read_text_file(path, fmt::format("the GCS service-account key file ({})", setting)));
    ARROW_ASSIGN_OR_RAISE(c.service_account,
                          parse_gcs_service_account(text, fmt::format("{} ({})", setting, path)));
  }
  c.access_token = token;
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
  } else if (c.access_token.empty() && !c.service_account) {
    return invalid("no GCS credentials: set GOOGLE_OAUTH_ACCESS_TOKEN (for example from `gcloud auth "
                   "print-access-token`), or a service-account key (GOOGLE_SERVICE_ACCOUNT_KEY, "
                   "GOOGLE_SERVICE_ACCOUNT or GOOGLE_APPLICATION_CREDENTIALS: a key file's path) in the "
                   "environment or storage_options, or STORAGE_EMULATOR_HOST=host:port to use a GCS emulator");
  }
  if (c.service_account && !c.service_account->base_url.empty() && c.service_account->base_url != c.endpoint) {
    return invalid("the GCS service-account key from {} sets gcs_base_url {}, but sluice reaches {}; set "
                   "STORAGE_EMULATOR_HOST to the same endpoint (sluice reads no endpoint from the key)",
                   c.service_account->source, c.service_account->base_url, c.endpoint);
  }
  return c;
}

GcsClient::GcsClient(GcsConfig config, std::shared_ptr<GcsTokenProvider> tokens)
    : config_(std::move(config)), tokens_(std::move(tokens)) {
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
  ARROW_ASSIGN_OR_RAISE(const auto token, this->token());
  if (!token.access_token.empty()) {
    list = curl_slist_append(list, ("Authorization: Bearer " + token.access_token).c_str());
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

arrow::Result<GcsToken> GcsClient::token() const {
  if (tokens_) return tokens_->get();
  return GcsToken{config_.access_token, 0};
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
