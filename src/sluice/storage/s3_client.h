// The few S3 REST requests Arrow's S3FileSystem cannot send: a conditional PUT
// (If-None-Match: *, the commit of a Delta version), ListObjectsV2 with start-after, and small
// GET/HEAD/DELETE/PUT of log objects. Sent with libcurl and its built-in AWS SigV4 signing.
#pragma once

#include <arrow/result.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sluice/storage/aws_credentials.h"

namespace sluice::storage {

// Where and as whom S3 is reached. Secrets stay in here: no message prints them.
struct S3Config {
  std::string endpoint;  // "https://s3.us-east-1.amazonaws.com" or AWS_ENDPOINT_URL, no trailing '/'
  std::string region = "us-east-1";
  // Where the credentials come from (the default chain, aws_credentials.h).
  AwsCredentialChain credentials;
  bool allow_http = false;
};

// From `options` (normalized keys) over the AWS_* environment. Refuses a plain-http endpoint
// without AWS_ALLOW_HTTP=true, and half-given credentials, saying what to set. Sends no request:
// credentials from STS, a container or the instance metadata are fetched by the store.
arrow::Result<S3Config> s3_config_from(const std::map<std::string, std::string>& options);

struct S3Response {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

class S3Client {
 public:
  S3Client(S3Config config, std::shared_ptr<AwsCredentialProvider> credentials);
  const S3Config& config() const { return config_; }
  AwsCredentialProvider& credentials() const { return *credentials_; }

  // One signed request to bucket/key (key may be ""), `query` already encoded and sorted by
  // name; `headers` are "Name: value" lines. Signed with the provider's current credentials
  // (and their session token). A transport failure (no connection) is a retryable IOError
  // naming the endpoint; any HTTP status is returned for the caller to judge.
  arrow::Result<S3Response> send(const std::string& method, const std::string& bucket,
                                 const std::string& key, const std::string& query,
                                 const std::string& body, const std::vector<std::string>& headers) const;

 private:
  S3Config config_;
  std::shared_ptr<AwsCredentialProvider> credentials_;
};

// S3's error body as "<Code>: <Message>" (or the status alone).
std::string s3_error_text(const S3Response& response);
// Percent-encoding of a key for a URL path ('/' kept) or of a query value ('/' encoded).
std::string s3_encode(const std::string& s, bool keep_slash);
// The text of every <tag>...</tag> in `xml`, entities decoded, from position `from` to `to`.
std::vector<std::string> xml_values(const std::string& xml, const std::string& tag,
                                    size_t from = 0, size_t to = std::string::npos);

}  // namespace sluice::storage
