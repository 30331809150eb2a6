// libcurl + SigV4 requests to S3 (s3_client.h).
#include "sluice/storage/s3_client.h"

#include <curl/curl.h>
#include <openssl/sha.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/storage/http_util.h"

namespace sluice::storage {

namespace {

std::string sha256_hex(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

void decode_entities(std::string& s) {
  static const std::pair<const char*, char> kEntities[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
  for (size_t pos = s.find('&'); pos != std::string::npos; pos = s.find('&', pos + 1)) {
    for (const auto& [name, c] : kEntities) {
      if (s.compare(pos, std::strlen(name), name) == 0) {
        s.replace(pos, std::strlen(name), 1, c);
        break;
      }
    }
  }
}

}  // namespace

std::string s3_encode(const std::string& s, bool keep_slash) { return percent_encode(s, keep_slash ? "/" : ""); }

std::vector<std::string> xml_values(const std::string& xml, const std::string& tag, size_t from, size_t to) {
  std::vector<std::string> out;
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  for (size_t pos = xml.find(open, from); pos != std::string::npos && pos < to; pos = xml.find(open, pos)) {
    pos += open.size();
    const size_t end = xml.find(close, pos);
    if (end == std::string::npos) break;
    std::string value = xml.substr(pos, end - pos);
    decode_entities(value);
    out.push_back(std::move(value));
    pos = end + close.size();
  }
  return out;
}

std::string s3_error_text(const S3Response& response) {
  auto code = xml_values(response.body, "Code");
  auto message = xml_values(response.body, "Message");
  std::string out = fmt::format("HTTP {}", response.status);
  if (!code.empty()) out += " " + code[0];
  if (!message.empty()) out += ": " + message[0];
  return out;
}

arrow::Result<S3Config> s3_config_from(const std::map<std::string, std::string>& options) {
  auto get = [&](const char* key) {
    auto it = options.find(key);
    return it != options.end() ? it->second : env_or_empty(key);
  };
  S3Config c;
  std::string region = get("AWS_REGION");
  if (region.empty()) region = get("AWS_DEFAULT_REGION");
  c.endpoint = get("AWS_ENDPOINT_URL");
  if (c.endpoint.empty()) c.endpoint = options.count("AWS_ENDPOINT_URL") ? "" : env_or_empty("AWS_ENDPOINT");
  const std::string allow = to_lower(get("AWS_ALLOW_HTTP"));
  if (!allow.empty() && allow != "true" && allow != "false") {
    return invalid("AWS_ALLOW_HTTP is '{}'; write true or false", allow);
  }
  c.allow_http = allow == "true";
  const std::string sts_region = region.empty() ? c.region : region;
  ARROW_ASSIGN_OR_RAISE(c.credentials, aws_credential_chain_from(
                                           options, fmt::format("https://sts.{}.amazonaws.com", sts_region),
                                           c.allow_http));
  // The profile's region when the environment names none, as the SDKs read it.
  if (region.empty()) region = c.credentials.region;
  if (!region.empty()) c.region = region;
  if (c.endpoint.empty()) c.endpoint = fmt::format("https://s3.{}.amazonaws.com", c.region);
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
  if (c.endpoint.rfind("http://", 0) == 0) {
    if (!c.allow_http) {
      return invalid("S3 endpoint {} is plain http: set AWS_ALLOW_HTTP=true (environment or "
                     "storage_options) to allow it, or use https",
                     c.endpoint);
    }
  } else if (c.endpoint.rfind("https://", 0) != 0) {
    return invalid("S3 endpoint '{}' (AWS_ENDPOINT_URL) must start with http:// or https://", c.endpoint);
  }
  return c;
}

S3Client::S3Client(S3Config config, std::shared_ptr<AwsCredentialProvider> credentials)
    : config_(std::move(config)), credentials_(std::move(credentials)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

arrow::Result<S3Response> S3Client::send(const std::string& method, const std::string& bucket,
                                         const std::string& key, const std::string& query,
                                         const std::string& body,
                                         const std::vector<std::string>& headers) const {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return io_error("cannot start an HTTP request to {} (curl_easy_init failed)", config_.endpoint);
  // Path-style addressing: works with every S3-compatible server and any bucket name.
  std::string url = config_.endpoint + "/" + s3_encode(bucket, false);
  if (!key.empty()) url += "/" + s3_encode(key, true);
  if (!query.empty()) url += "?" + query;
  const std::string sigv4 = "aws:amz:" + config_.region + ":s3";
  ARROW_ASSIGN_OR_RAISE(const auto credentials, credentials_->get());
  const std::string userpwd = credentials.access_key + ":" + credentials.secret_key;
  S3Response response;
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  list = curl_slist_append(list, ("x-amz-content-sha256: " + sha256_hex(body)).c_str());
  if (!credentials.session_token.empty()) {
    list = curl_slist_append(list, ("x-amz-security-token: " + credentials.session_token).c_str());
  }
  list = curl_slist_append(list, "Expect:");
  std::unique_ptr<curl_slist, SlistDeleter> header_list(list);
  CURL* c = curl.get();
  curl_prepare(c, url, config_.allow_http, &response.body, &response.headers);
  curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4.c_str());
  curl_easy_setopt(c, CURLOPT_USERPWD, userpwd.c_str());
  // PUT's body as POSTFIELDS so that curl hashes the payload into the signature.
  curl_set_method(c, method, body, method == "PUT");
  if (method == "PUT") {
    header_list.reset(curl_slist_append(header_list.release(), "Content-Type: application/octet-stream"));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list.get());
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return mark_retryable(io_error("S3 {} s3://{}/{}: cannot reach {}: {} (is the endpoint right "
                                   "and the server running? check AWS_ENDPOINT_URL)",
                                   method, bucket, key, config_.endpoint, curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace sluice::storage
