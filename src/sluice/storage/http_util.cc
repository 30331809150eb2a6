// See http_util.h.
#include "sluice/storage/http_util.h"

#include <cctype>
#include <cstdlib>

#include "sluice/common/text.h"

namespace sluice::storage {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

size_t curl_append_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t curl_store_header(char* data, size_t size, size_t n, void* user) {
  std::string line(data, size * n);
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string value = line.substr(colon + 1);
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.erase(0, 1);
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
    (*static_cast<std::map<std::string, std::string>*>(user))[to_lower(line.substr(0, colon))] = value;
  }
  return size * n;
}

void curl_prepare(CURL* c, const std::string& url, bool allow_http, std::string* body,
                  std::map<std::string, std::string>* headers) {
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10'000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 120'000L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, allow_http ? "http,https" : "https");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_append_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
  if (headers != nullptr) {
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, curl_store_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, headers);
  }
}

void curl_set_method(CURL* c, const std::string& method, const std::string& payload, bool send_body) {
  if (method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (send_body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload.data());
  }
}

std::pair<std::string, std::string> split_bucket_key(const std::string& path) {
  const auto slash = path.find('/');
  if (slash == std::string::npos) return {path, ""};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace sluice::storage
