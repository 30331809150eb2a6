// Small pieces the object stores' own HTTP clients (s3_client, gcs_client, azure_client) and
// stores share: libcurl callbacks and handles, the environment, "bucket/key" paths.
#pragma once

#include <arrow/result.h>
#include <curl/curl.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::storage {

// Seconds since the epoch, now (credential expiry times are kept so).
int64_t unix_now();

// The environment variable's value, "" when unset.
std::string env_or_empty(const char* name);

// The whole of a small local file (a token, a key, a shared config file); an Invalid error
// naming `what`, the path and the errno when it cannot be read.
arrow::Result<std::string> read_text_file(const std::string& path, const std::string& what);

// An object's size as a store answered it (Content-Length, <Size>, JSON "size"): a whole
// number >= 0, or an IOError naming `what` (the store's request and the object) and the text; a
// garbled answer is refused, not taken as size 0 or as the digits it starts with.
arrow::Result<int64_t> parse_object_size(std::string_view text, const std::string& what);

// CURLOPT_WRITEFUNCTION: appends the body to the std::string in `user`.
size_t curl_append_body(char* data, size_t size, size_t n, void* user);
// CURLOPT_HEADERFUNCTION: stores "Name: value" in the std::map<std::string, std::string> in
// `user`, the name lower-cased and the value trimmed.
size_t curl_store_header(char* data, size_t size, size_t n, void* user);

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// The options every object-store request sets: the URL, no signals, 10 s to connect and 120 s in
// all, only https unless `allow_http`, the body into `body` and (when not null) the headers into
// `headers` (curl_store_header).
void curl_prepare(CURL* c, const std::string& url, bool allow_http, std::string* body,
                  std::map<std::string, std::string>* headers);
// GET, HEAD or any other method; with `send_body`, `payload` is sent as the request body (it
// must outlive the request).
void curl_set_method(CURL* c, const std::string& method, const std::string& payload, bool send_body);

// Which certificate authorities a request to an https endpoint trusts: libcurl's built-in
// bundle (the system store), or, with kSslCertEnv, also OpenSSL's SSL_CERT_FILE / SSL_CERT_DIR
// when set, as the Azure SDK inside the pyarrow wheel does (its OpenSSL reads them), so that a
// private CA trusted for one request path is trusted for the other.
enum class TlsTrust { kDefault, kSslCertEnv };
// CURLOPT_CAINFO / CURLOPT_CAPATH from SSL_CERT_FILE / SSL_CERT_DIR, where set (read once, at
// the first call).
void curl_trust_ssl_cert_env(CURL* c);
// " (the server's certificate is not trusted: ...)" for a failed TLS verification or an
// unreadable CA file, naming SSL_CERT_FILE; "" for any other transport error.
std::string curl_tls_hint(CURLcode rc);

// One small request (a credential or token endpoint): `headers` are "Name: value" lines,
// `timeout_ms` bounds connect and transfer. A transport failure is a retryable IOError naming
// `what` and the URL; any HTTP status is returned.
// With `signing.sigv4` ("aws:amz:<region>:<service>") the request is signed with curl's AWS
// SigV4 and `signing.userpwd` ("key id:secret").
struct HttpResponse {
  long status = 0;
  std::string body;
};
struct HttpSigning {
  std::string sigv4;
  std::string userpwd;
};
arrow::Result<HttpResponse> http_send(const std::string& method, const std::string& url, const std::string& body,
                                      const std::vector<std::string>& headers, bool allow_http, long timeout_ms,
                                      const std::string& what, const HttpSigning& signing = {},
                                      TlsTrust trust = TlsTrust::kDefault);

// The host of "scheme://host[:port][/path]" ("::1" for "[::1]"), and whether it is the loopback
// (localhost, 127.x.x.x, ::1): where a test's plain-http credential endpoint may be.
std::string url_host(const std::string& url);
bool is_loopback_url(const std::string& url);

// "bucket/key" (or "container/blob") -> (bucket, key); key "" when there is no '/'.
std::pair<std::string, std::string> split_bucket_key(const std::string& path);

}  // namespace sluice::storage
