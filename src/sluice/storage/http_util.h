// Small pieces the object stores' own HTTP clients (s3_client, gcs_client, azure_client) and
// stores share: libcurl callbacks and handles, the environment, "bucket/key" paths.
#pragma once

#include <curl/curl.h>

#include <map>
#include <memory>
#include <string>
#include <utility>

namespace sluice::storage {

// The environment variable's value, "" when unset.
std::string env_or_empty(const char* name);

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

// "bucket/key" (or "container/blob") -> (bucket, key); key "" when there is no '/'.
std::pair<std::string, std::string> split_bucket_key(const std::string& path);

}  // namespace sluice::storage
