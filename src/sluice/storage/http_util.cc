// See http_util.h.
#include "sluice/storage/http_util.h"

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <mutex>

#include "sluice/common/status.h"
#include "sluice/common/text.h"

namespace sluice::storage {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

arrow::Result<std::string> read_text_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return invalid("cannot read {} {}: {}; check the path and its permissions", what, path, errno_text(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

arrow::Result<int64_t> parse_object_size(std::string_view text, const std::string& what) {
  const auto size = parse_int64(text, "size");
  if (!size.ok() || *size < 0) {
    return io_error("{} answered a size '{}' that is not a whole number of bytes >= 0; check the endpoint is the "
                    "object store it claims to be",
                    what, quote_for_error(text));
  }
  return *size;
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

void curl_trust_ssl_cert_env(CURL* c) {
  // Read once, at the first use (thread-safe initialisation), not at each request: a process-wide
  // start-up setting, and no getenv while other threads run requests.
  static const std::string file = env_or_empty("SSL_CERT_FILE");
  static const std::string dir = env_or_empty("SSL_CERT_DIR");
  if (!file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, file.c_str());
  if (!dir.empty()) curl_easy_setopt(c, CURLOPT_CAPATH, dir.c_str());
}

std::string curl_tls_hint(CURLcode rc) {
  if (rc == CURLE_PEER_FAILED_VERIFICATION) {
    return " (the server's certificate is not trusted: for a private certificate authority set SSL_CERT_FILE "
           "to its PEM file (or SSL_CERT_DIR to a hashed folder) in sluice's environment)";
  }
  if (rc == CURLE_SSL_CACERT_BADFILE) {
    return " (the certificate authority file cannot be read: check SSL_CERT_FILE / SSL_CERT_DIR)";
  }
  return "";
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

arrow::Result<HttpResponse> http_send(const std::string& method, const std::string& url, const std::string& body,
                                      const std::vector<std::string>& headers, bool allow_http, long timeout_ms,
                                      const std::string& what, const HttpSigning& signing, TlsTrust trust) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return io_error("cannot start an HTTP request to {} (curl_easy_init failed)", what);
  HttpResponse response;
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  list = curl_slist_append(list, "Expect:");
  std::unique_ptr<curl_slist, SlistDeleter> header_list(list);
  CURL* c = curl.get();
  curl_prepare(c, url, allow_http, &response.body, nullptr);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_set_method(c, method, body, method != "GET" && method != "HEAD");
  if (trust == TlsTrust::kSslCertEnv) curl_trust_ssl_cert_env(c);
  if (!signing.sigv4.empty()) {
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, signing.sigv4.c_str());
    curl_easy_setopt(c, CURLOPT_USERPWD, signing.userpwd.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list.get());
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return mark_retryable(io_error("cannot reach {} at {}: {}{}", what, url, curl_easy_strerror(rc),
                                   trust == TlsTrust::kSslCertEnv ? curl_tls_hint(rc) : ""));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

std::string url_host(const std::string& url) {
  const auto start = url.find("://");
  if (start == std::string::npos) return "";
  std::string host = url.substr(start + 3, url.find_first_of("/?#", start + 3) - start - 3);
  if (const auto at = host.rfind('@'); at != std::string::npos) host = host.substr(at + 1);
  if (!host.empty() && host[0] == '[') return host.substr(1, host.find(']') - 1);
  if (const auto colon = host.rfind(':'); colon != std::string::npos) host = host.substr(0, colon);
  return host;
}

bool is_loopback_url(const std::string& url) {
  const std::string host = url_host(url);
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

std::pair<std::string, std::string> split_bucket_key(const std::string& path) {
  const auto slash = path.find('/');
  if (slash == std::string::npos) return {path, ""};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace sluice::storage
