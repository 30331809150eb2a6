// The AWS default credential chain as the AWS SDKs read it: static keys (environment or
// storage_options), web identity (AssumeRoleWithWebIdentity at STS), a profile of the shared
// credentials/config files, the ECS/EKS container endpoint and the EC2 instance metadata
// (IMDSv2). One provider per S3 store hands the same, refreshed credentials to both request
// paths (libcurl's SigV4 and Arrow's S3FileSystem).
#pragma once

#include <arrow/result.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "sluice/storage/refreshing_cache.h"

namespace sluice::storage {

// Secrets stay in here: no message prints them.
struct AwsCredentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  int64_t expires_unix = 0;  // seconds since the epoch; 0: they do not expire
};

enum class AwsCredentialSource { kStatic, kProfile, kWebIdentity, kAssumeRole, kContainer, kInstanceMetadata };

// Which link of the chain applies and what it needs, decided from the options and the
// environment without sending any request.
struct AwsCredentialChain {
  AwsCredentialSource source = AwsCredentialSource::kStatic;
  AwsCredentials keys;       // kStatic, kProfile; kAssumeRole: the source profile's
  std::string profile;       // kProfile (or kWebIdentity from a profile): its name
  std::string profile_file;  // the file that holds it, for messages
  std::string region;        // the profile's `region` ("" when none)
  // kWebIdentity (token_file) and kAssumeRole
  std::string token_file, role_arn, session_name, sts_endpoint;
  // kContainer: the URL and its Authorization header (a token, or a file holding one)
  std::string container_url, container_token, container_token_file;
  // kInstanceMetadata
  std::string metadata_endpoint;
  // Also where the chain looked before (for the message when the last link finds nothing).
  std::string searched;
  bool allow_http = false;

  // Where the credentials come from, for messages (never a secret).
  std::string describe() const;
  // What tells two chains apart (one store per identity in the process); holds secrets.
  std::string identity() const;
};

// From `options` (normalized keys) over the environment. `default_sts_endpoint` is used for web
// identity and AssumeRole unless AWS_ENDPOINT_URL_STS or AWS_ENDPOINT_URL names one. Refuses
// half-given settings (a key id without its secret, a role without a token file), a named profile
// that no file holds, and profile settings not supported yet (credential_source,
// credential_process, sso_*, a source_profile without keys).
arrow::Result<AwsCredentialChain> aws_credential_chain_from(const std::map<std::string, std::string>& options,
                                                            const std::string& default_sts_endpoint,
                                                            bool allow_http);

// The sections of an AWS shared credentials or config file: "[profile x]" as "x" when
// `config_file`; keys lower-cased. Comments (#, ;) and blank lines skipped.
std::map<std::string, std::map<std::string, std::string>> parse_aws_ini(const std::string& text,
                                                                        bool config_file);
// "2026-12-06T16:10:00Z" (optionally with fractional seconds or "+00:00") -> epoch seconds; 0
// when unparsable.
int64_t iso8601_seconds(const std::string& text);

// Thread-safe: any thread may call get() (the cache guards the credentials).
class AwsCredentialProvider {
 public:
  // Fetches the first credentials: an error here names the source and what to check.
  static arrow::Result<std::shared_ptr<AwsCredentialProvider>> Make(AwsCredentialChain chain);

  // The current credentials, fetched again once less than half their lifetime (at most 5
  // minutes) is left, as the SDKs refresh them before expiry.
  arrow::Result<AwsCredentials> get();
  const AwsCredentialChain& chain() const { return chain_; }
  // How many times credentials were fetched (tests, the event log).
  int64_t fetches() const;

 private:
  explicit AwsCredentialProvider(AwsCredentialChain chain) : chain_(std::move(chain)) {}
  arrow::Result<AwsCredentials> fetch() const;
  arrow::Result<AwsCredentials> fetch_web_identity() const;
  arrow::Result<AwsCredentials> fetch_assume_role() const;
  // One STS call (`action`, its parameters after RoleArn and RoleSessionName in `more`); `hint`
  // says what to check when STS refuses.
  arrow::Result<AwsCredentials> sts_request(const std::string& action, const std::string& more,
                                            const std::string& hint) const;
  arrow::Result<AwsCredentials> fetch_container() const;
  arrow::Result<AwsCredentials> fetch_instance_metadata() const;

  const AwsCredentialChain chain_;
  RefreshingCache<AwsCredentials> cache_;
};

}  // namespace sluice::storage
