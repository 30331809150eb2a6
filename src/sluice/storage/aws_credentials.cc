// The AWS credential chain and its provider (aws_credentials.h).
#include "sluice/storage/aws_credentials.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <vector>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/storage/http_util.h"
#include "sluice/storage/s3_client.h"

namespace sluice::storage {

namespace {

constexpr const char* kEcsHost = "http://169.254.170.2";
constexpr const char* kMetadataEndpoint = "http://169.254.169.254";
// The SDKs wait about a second for the instance metadata: off EC2 nothing answers there.
constexpr long kMetadataTimeoutMs = 1'000;
constexpr long kCredentialTimeoutMs = 10'000;

std::string trim_space(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::string home_file(const char* relative) {
  const std::string home = env_or_empty("HOME");
  return home.empty() ? "" : home + "/" + relative;
}

bool setting_is_true(const std::string& value) { return to_lower(trim_space(value)) == "true"; }

// The SDKs allow plain http to a container endpoint only on the loopback or ECS/EKS addresses.
bool container_host_allowed(const std::string& url) {
  if (url.rfind("https://", 0) == 0) return true;
  if (url.rfind("http://", 0) != 0) return false;
  const std::string host = url_host(url);
  return is_loopback_url(url) || host == "169.254.170.2" || host == "169.254.170.23" || host == "fd00:ec2::23";
}

// The credentials JSON of the container endpoint and the instance metadata (the same shape).
arrow::Result<AwsCredentials> parse_credentials_json(const std::string& body, const std::string& what) {
  auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return invalid("{} answered with something that is not a credentials JSON object", what);
  }
  if (json.contains("Code") && json["Code"].is_string() && json["Code"].get<std::string>() != "Success") {
    return invalid("{} answered Code '{}' instead of credentials", what, json["Code"].get<std::string>());
  }
  auto field = [&](const char* name) {
    return json.contains(name) && json[name].is_string() ? json[name].get<std::string>() : std::string();
  };
  AwsCredentials c;
  c.access_key = field("AccessKeyId");
  c.secret_key = field("SecretAccessKey");
  c.session_token = field("Token");
  const std::string expiration = field("Expiration");
  if (!expiration.empty()) c.expires_unix = iso8601_seconds(expiration);
  if (c.access_key.empty() || c.secret_key.empty()) {
    return invalid("{} answered without AccessKeyId and SecretAccessKey", what);
  }
  if (!expiration.empty() && c.expires_unix == 0) {
    return invalid("{} answered an Expiration '{}' that is not an ISO 8601 UTC time", what, expiration);
  }
  return c;
}

// The chain's links after the static keys, each tried from the options over the environment.
class ChainBuilder {
 public:
  ChainBuilder(const std::map<std::string, std::string>& options, const std::string& default_sts, bool allow_http)
      : options_(options), default_sts_(default_sts) {
    chain_.allow_http = allow_http;
  }

  std::string get(const char* key) const {
    auto it = options_.find(key);
    return it != options_.end() ? it->second : env_or_empty(key);
  }

  arrow::Result<AwsCredentialChain> build();

 private:
  void web_identity(std::string token_file, std::string role_arn, std::string session_name) {
    chain_.source = AwsCredentialSource::kWebIdentity;
    chain_.token_file = std::move(token_file);
    role(std::move(role_arn), std::move(session_name));
  }
  // The role to assume at STS, with the source's credentials in chain_.keys (kAssumeRole).
  void role(std::string role_arn, std::string session_name) {
    chain_.role_arn = std::move(role_arn);
    // One default name per process: the chain is built at every open of a location, and the
    // name is part of the identity that picks the store (a new name would make a new store).
    static const std::string kDefaultSessionName = fmt::format("sluice-{}", unix_now());
    chain_.session_name = session_name.empty() ? kDefaultSessionName : std::move(session_name);
    chain_.sts_endpoint = get("AWS_ENDPOINT_URL_STS");
    if (chain_.sts_endpoint.empty()) chain_.sts_endpoint = get("AWS_ENDPOINT_URL");
    if (chain_.sts_endpoint.empty()) chain_.sts_endpoint = default_sts_;
    while (!chain_.sts_endpoint.empty() && chain_.sts_endpoint.back() == '/') chain_.sts_endpoint.pop_back();
  }
  // true when the profile gives credentials; false to go on down the chain.
  arrow::Result<bool> profile();
  // The settings of profile `name` from both files (none when neither holds it) and which files.
  arrow::Status read_profile(const std::string& name, std::map<std::string, std::string>& settings,
                             std::string& holder) const;

  std::string credentials_file_, config_file_;

  const std::map<std::string, std::string>& options_;
  const std::string default_sts_;
  AwsCredentialChain chain_;
};

arrow::Status ChainBuilder::read_profile(const std::string& name, std::map<std::string, std::string>& settings,
                                         std::string& holder) const {
  // The credentials file wins over the config file for a key both have (as the SDKs read them).
  for (const auto& [file, is_config] : {std::pair{config_file_, true}, std::pair{credentials_file_, false}}) {
    if (file.empty()) continue;
    std::ifstream probe(file);
    if (!probe) continue;
    ARROW_ASSIGN_OR_RAISE(auto text, read_text_file(file, "AWS shared file"));
    auto sections = parse_aws_ini(text, is_config);
    auto it = sections.find(name);
    if (it == sections.end()) continue;
    for (const auto& [k, v] : it->second) settings[k] = v;
    holder = holder.empty() ? file : holder + " and " + file;
  }
  return arrow::Status::OK();
}

arrow::Result<bool> ChainBuilder::profile() {
  std::string name = get("AWS_PROFILE");
  if (name.empty()) name = env_or_empty("AWS_DEFAULT_PROFILE");
  const bool named = !name.empty();
  if (!named) name = "default";
  credentials_file_ = get("AWS_SHARED_CREDENTIALS_FILE");
  if (credentials_file_.empty()) credentials_file_ = home_file(".aws/credentials");
  config_file_ = get("AWS_CONFIG_FILE");
  if (config_file_.empty()) config_file_ = home_file(".aws/config");
  std::map<std::string, std::string> settings;
  std::string holder;
  ARROW_RETURN_NOT_OK(read_profile(name, settings, holder));
  const std::string files = credentials_file_ + " or " + config_file_;
  if (holder.empty()) {
    if (named) {
      return invalid("AWS profile '{}' (AWS_PROFILE) is in neither {}; check the name, or set "
                     "AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE to the files that hold it",
                     name, files);
    }
    chain_.searched += fmt::format(", profile 'default' (not in {})", files);
    return false;
  }
  chain_.profile = name;
  chain_.profile_file = holder;
  if (auto it = settings.find("region"); it != settings.end()) chain_.region = it->second;
  for (const char* unsupported : {"credential_source", "credential_process", "sso_session", "sso_start_url",
                                  "sso_account_id"}) {
    if (settings.count(unsupported)) {
      return arrow::Status::NotImplemented(fmt::format(
          "AWS profile '{}' in {} sets {}, which sluice does not support yet (supported in a profile: "
          "aws_access_key_id, aws_secret_access_key, aws_session_token, region, and role_arn with "
          "web_identity_token_file or with a source_profile that has keys); use a profile with keys, or "
          "AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE, or the container or instance credentials",
          name, holder, unsupported));
    }
  }
  const bool has_id = settings.count("aws_access_key_id"), has_secret = settings.count("aws_secret_access_key");
  if (has_id != has_secret) {
    return invalid("AWS profile '{}' in {} has {} without {}; add it or remove the profile's keys", name, holder,
                   has_id ? "aws_access_key_id" : "aws_secret_access_key",
                   has_id ? "aws_secret_access_key" : "aws_access_key_id");
  }
  if (has_id) {
    chain_.source = AwsCredentialSource::kProfile;
    chain_.keys.access_key = settings["aws_access_key_id"];
    chain_.keys.secret_key = settings["aws_secret_access_key"];
    chain_.keys.session_token = settings["aws_session_token"];
    return true;
  }
  const bool has_role = settings.count("role_arn"), has_token = settings.count("web_identity_token_file");
  if (has_role && has_token) {
    web_identity(settings["web_identity_token_file"], settings["role_arn"], settings["role_session_name"]);
    return true;
  }
  if (has_role && settings.count("source_profile")) {
    // AssumeRole signed with the source profile's keys (one level: a source that assumes a role
    // itself is refused).
    const std::string source = settings["source_profile"];
    std::map<std::string, std::string> source_settings;
    std::string source_holder;
    ARROW_RETURN_NOT_OK(read_profile(source, source_settings, source_holder));
    if (!source_settings.count("aws_access_key_id") || !source_settings.count("aws_secret_access_key")) {
      return arrow::Status::NotImplemented(fmt::format(
          "AWS profile '{}' in {} assumes role {} with source_profile '{}', which {}; sluice supports a "
          "source profile with aws_access_key_id and aws_secret_access_key (role chains not yet)",
          name, holder, settings["role_arn"], source,
          source_holder.empty() ? "is in neither " + files : "has no keys in " + source_holder));
    }
    chain_.source = AwsCredentialSource::kAssumeRole;
    chain_.keys.access_key = source_settings["aws_access_key_id"];
    chain_.keys.secret_key = source_settings["aws_secret_access_key"];
    chain_.keys.session_token = source_settings["aws_session_token"];
    role(settings["role_arn"], settings["role_session_name"]);
    return true;
  }
  if (has_role) {
    return arrow::Status::NotImplemented(fmt::format(
        "AWS profile '{}' in {} sets role_arn without web_identity_token_file or source_profile; give "
        "one of them (credential_source is not supported yet)",
        name, holder));
  }
  chain_.searched += fmt::format(", profile '{}' in {} (no keys in it)", name, holder);
  return false;
}

arrow::Result<AwsCredentialChain> ChainBuilder::build() {
  // 1. Static keys.
  const std::string id = get("AWS_ACCESS_KEY_ID"), secret = get("AWS_SECRET_ACCESS_KEY");
  if (!id.empty() && !secret.empty()) {
    chain_.source = AwsCredentialSource::kStatic;
    chain_.keys = AwsCredentials{id, secret, get("AWS_SESSION_TOKEN"), 0};
    return chain_;
  }
  if (!id.empty() || !secret.empty()) {
    return invalid("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
                   "AWS_SESSION_TOKEN for temporary ones) in the environment or storage_options: {} is "
                   "set but {} is not",
                   id.empty() ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID",
                   id.empty() ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY");
  }
  chain_.searched = "AWS_ACCESS_KEY_ID (not set)";
  // 2. Web identity (EKS IRSA, GitHub OIDC, ...).
  const std::string token_file = get("AWS_WEB_IDENTITY_TOKEN_FILE"), role = get("AWS_ROLE_ARN");
  if (!token_file.empty() && !role.empty()) {
    web_identity(token_file, role, get("AWS_ROLE_SESSION_NAME"));
    return chain_;
  }
  if (!token_file.empty() || !role.empty()) {
    return invalid("AWS web identity credentials need both AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN: {} is "
                   "set but {} is not",
                   role.empty() ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN",
                   role.empty() ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE");
  }
  // 3. A profile of the shared files.
  ARROW_ASSIGN_OR_RAISE(bool from_profile, profile());
  if (from_profile) return chain_;
  // 4. The container endpoint (ECS task role, EKS pod identity).
  const std::string relative = get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  const std::string full = get("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  if (!relative.empty() || !full.empty()) {
    chain_.source = AwsCredentialSource::kContainer;
    chain_.container_url = !relative.empty() ? kEcsHost + relative : full;
    if (relative.empty() && !container_host_allowed(full)) {
      return invalid("AWS_CONTAINER_CREDENTIALS_FULL_URI '{}' is plain http to a host other than the loopback "
                     "or the ECS/EKS credential addresses (169.254.170.2, 169.254.170.23); the AWS SDKs refuse "
                     "it too: use https or one of those hosts",
                     full);
    }
    chain_.container_token_file = get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (chain_.container_token_file.empty()) chain_.container_token = get("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    return chain_;
  }
  chain_.searched += ", AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI (not set)";
  // 5. The EC2 instance metadata.
  if (setting_is_true(get("AWS_EC2_METADATA_DISABLED"))) {
    return invalid("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN "
                   "for temporary ones) in the environment or storage_options, or AWS_PROFILE, or "
                   "AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE (looked at: {}; the instance metadata is "
                   "off: AWS_EC2_METADATA_DISABLED=true)",
                   chain_.searched);
  }
  chain_.source = AwsCredentialSource::kInstanceMetadata;
  chain_.metadata_endpoint = get("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (chain_.metadata_endpoint.empty()) chain_.metadata_endpoint = get("AWS_METADATA_ENDPOINT");
  if (chain_.metadata_endpoint.empty()) chain_.metadata_endpoint = kMetadataEndpoint;
  while (!chain_.metadata_endpoint.empty() && chain_.metadata_endpoint.back() == '/') chain_.metadata_endpoint.pop_back();
  if (chain_.metadata_endpoint.rfind("http://", 0) != 0 && chain_.metadata_endpoint.rfind("https://", 0) != 0) {
    return invalid("AWS_EC2_METADATA_SERVICE_ENDPOINT '{}' must start with http:// or https://",
                   chain_.metadata_endpoint);
  }
  return chain_;
}

}  // namespace

int64_t iso8601_seconds(const std::string& text) {
  std::tm tm{};
  char rest = 0;
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec, &rest) < 6) {
    return 0;
  }
  const auto tail = text.find_first_of("Z+", 19);
  if (tail == std::string::npos && text.size() > 19 && text[19] != '.') return 0;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm));
}

std::map<std::string, std::map<std::string, std::string>> parse_aws_ini(const std::string& text, bool config_file) {
  std::map<std::string, std::map<std::string, std::string>> out;
  std::map<std::string, std::string>* section = nullptr;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    line = trim_space(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      std::string name = trim_space(line.substr(1, line.size() - 2));
      if (config_file && name.rfind("profile ", 0) == 0) {
        name = trim_space(name.substr(8));
      } else if (config_file && name != "default") {
        section = nullptr;  // [sso-session x], [services x]: not profiles
        continue;
      }
      section = &out[name];
      continue;
    }
    const auto eq = line.find('=');
    if (section == nullptr || eq == std::string::npos) continue;
    (*section)[to_lower(trim_space(line.substr(0, eq)))] = trim_space(line.substr(eq + 1));
  }
  return out;
}

std::string AwsCredentialChain::describe() const {
  switch (source) {
    case AwsCredentialSource::kStatic: return "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY";
    case AwsCredentialSource::kProfile: return fmt::format("AWS profile '{}' ({})", profile, profile_file);
    case AwsCredentialSource::kWebIdentity:
      return fmt::format("web identity: role {} assumed at {} with the token in {}{}", role_arn, sts_endpoint,
                         token_file, profile.empty() ? "" : fmt::format(" (AWS profile '{}')", profile));
    case AwsCredentialSource::kAssumeRole:
      return fmt::format("role {} assumed at {} (AWS profile '{}', {})", role_arn, sts_endpoint, profile, profile_file);
    case AwsCredentialSource::kContainer: return fmt::format("the container credentials endpoint {}", container_url);
    case AwsCredentialSource::kInstanceMetadata:
      return fmt::format("the EC2 instance metadata (IMDSv2) at {}", metadata_endpoint);
  }
  return "";
}

std::string AwsCredentialChain::identity() const {
  return fmt::format("{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}", static_cast<int>(source), keys.access_key,
                     keys.secret_key, keys.session_token, role_arn, token_file, session_name, sts_endpoint, container_url,
                     container_token, container_token_file, metadata_endpoint);
}

arrow::Result<AwsCredentialChain> aws_credential_chain_from(const std::map<std::string, std::string>& options,
                                                            const std::string& default_sts_endpoint,
                                                            bool allow_http) {
  return ChainBuilder(options, default_sts_endpoint, allow_http).build();
}

arrow::Result<std::shared_ptr<AwsCredentialProvider>> AwsCredentialProvider::Make(AwsCredentialChain chain) {
  std::shared_ptr<AwsCredentialProvider> provider(new AwsCredentialProvider(std::move(chain)));
  ARROW_RETURN_NOT_OK(provider->get().status());
  return provider;
}

int64_t AwsCredentialProvider::fetches() const { return cache_.fetches(); }

arrow::Result<AwsCredentials> AwsCredentialProvider::get() {
  auto got = cache_.get(unix_now(), [this] { return fetch(); });
  if (!got.ok()) return with_context(got.status(), "cannot get S3 credentials from " + chain_.describe());
  return got;
}

arrow::Result<AwsCredentials> AwsCredentialProvider::fetch() const {
  switch (chain_.source) {
    case AwsCredentialSource::kStatic:
    case AwsCredentialSource::kProfile: return chain_.keys;
    case AwsCredentialSource::kWebIdentity: return fetch_web_identity();
    case AwsCredentialSource::kAssumeRole: return fetch_assume_role();
    case AwsCredentialSource::kContainer: return fetch_container();
    case AwsCredentialSource::kInstanceMetadata: return fetch_instance_metadata();
  }
  return arrow::Status::UnknownError("unknown AWS credential source");
}

arrow::Result<AwsCredentials> AwsCredentialProvider::fetch_web_identity() const {
  // The token file is read each time: Kubernetes rotates it.
  ARROW_ASSIGN_OR_RAISE(auto token, read_text_file(chain_.token_file, "the web identity token file"));
  token = trim_space(token);
  if (token.empty()) return invalid("the web identity token file {} is empty", chain_.token_file);
  return sts_request("AssumeRoleWithWebIdentity", "&WebIdentityToken=" + s3_encode(token, false),
                     fmt::format("check AWS_ROLE_ARN, the role's trust policy and the token in {}", chain_.token_file));
}

arrow::Result<AwsCredentials> AwsCredentialProvider::fetch_assume_role() const {
  return sts_request("AssumeRole", "",
                     fmt::format("check the keys of the source profile and the trust policy of {}", chain_.role_arn));
}

arrow::Result<AwsCredentials> AwsCredentialProvider::sts_request(const std::string& action, const std::string& more,
                                                                 const std::string& hint) const {
  const std::string body = "Action=" + action + "&Version=2011-06-15&RoleArn=" + s3_encode(chain_.role_arn, false) +
                           "&RoleSessionName=" + s3_encode(chain_.session_name, false) + more;
  const bool http = chain_.sts_endpoint.rfind("http://", 0) == 0;
  if (http && !chain_.allow_http) {
    return invalid("the STS endpoint {} is plain http: set AWS_ALLOW_HTTP=true to allow it, or use https",
                   chain_.sts_endpoint);
  }
  const std::string what = "STS (" + action + ")";
  std::vector<std::string> headers = {"Content-Type: application/x-www-form-urlencoded"};
  HttpSigning signing;
  if (chain_.source == AwsCredentialSource::kAssumeRole) {  // signed with the source's keys
    signing.sigv4 = "aws:amz:" + (chain_.region.empty() ? std::string("us-east-1") : chain_.region) + ":sts";
    signing.userpwd = chain_.keys.access_key + ":" + chain_.keys.secret_key;
    if (!chain_.keys.session_token.empty()) headers.push_back("x-amz-security-token: " + chain_.keys.session_token);
  }
  ARROW_ASSIGN_OR_RAISE(auto r, http_send("POST", chain_.sts_endpoint + "/", body, headers, chain_.allow_http,
                                          kCredentialTimeoutMs, what, signing));
  if (r.status != 200) {
    S3Response s3{r.status, r.body, {}};
    auto st = invalid("STS {} of role {} failed: {} ({})", action, chain_.role_arn, s3_error_text(s3), hint);
    return r.status >= 500 || r.status == 429 ? mark_retryable(st) : st;
  }
  AwsCredentials c;
  auto value = [&](const char* tag) {
    auto v = xml_values(r.body, tag);
    return v.empty() ? std::string() : v[0];
  };
  c.access_key = value("AccessKeyId");
  c.secret_key = value("SecretAccessKey");
  c.session_token = value("SessionToken");
  c.expires_unix = iso8601_seconds(value("Expiration"));
  if (c.access_key.empty() || c.secret_key.empty() || c.session_token.empty()) {
    return invalid("STS {} at {} answered without credentials", action, chain_.sts_endpoint);
  }
  return c;
}

arrow::Result<AwsCredentials> AwsCredentialProvider::fetch_container() const {
  std::vector<std::string> headers;
  std::string token = chain_.container_token;
  if (!chain_.container_token_file.empty()) {
    ARROW_ASSIGN_OR_RAISE(token, read_text_file(chain_.container_token_file, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"));
    token = trim_space(token);
  }
  if (!token.empty()) headers.push_back("Authorization: " + token);
  const std::string what = "the container credentials endpoint";
  ARROW_ASSIGN_OR_RAISE(auto r, http_send("GET", chain_.container_url, "", headers, true, kCredentialTimeoutMs, what));
  if (r.status != 200) {
    auto st = invalid("{} {} answered HTTP {} (check AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE] and the task's role)",
                      what, chain_.container_url, r.status);
    return r.status >= 500 || r.status == 429 ? mark_retryable(st) : st;
  }
  return parse_credentials_json(r.body, what + " " + chain_.container_url);
}

arrow::Result<AwsCredentials> AwsCredentialProvider::fetch_instance_metadata() const {
  const std::string& base = chain_.metadata_endpoint;
  const std::string what = "the EC2 instance metadata";
  auto fail = [&](const std::string& why) {
    return invalid("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN "
                   "for temporary ones) in the environment or storage_options, or AWS_PROFILE, or AWS_ROLE_ARN "
                   "with AWS_WEB_IDENTITY_TOKEN_FILE (looked at: {}; the EC2 instance metadata at {}: {}; set "
                   "AWS_EC2_METADATA_DISABLED=true off EC2)",
                   chain_.searched, base, why);
  };
  auto token = http_send("PUT", base + "/latest/api/token", "", {"X-aws-ec2-metadata-token-ttl-seconds: 21600"},
                         true, kMetadataTimeoutMs, what);
  if (!token.ok()) return fail(token.status().message());
  if (token->status != 200) {
    return fail(fmt::format("its IMDSv2 session token request answered HTTP {} (IMDSv1 is not used)", token->status));
  }
  const std::string session = "X-aws-ec2-metadata-token: " + trim_space(token->body);
  const std::string roles_url = base + "/latest/meta-data/iam/security-credentials/";
  ARROW_ASSIGN_OR_RAISE(auto roles, http_send("GET", roles_url, "", {session}, true, kCredentialTimeoutMs, what));
  if (roles.status != 200) {
    return fail(fmt::format("{} answered HTTP {} (does the instance have an IAM role?)", roles_url, roles.status));
  }
  const std::string role = trim_space(roles.body.substr(0, roles.body.find('\n')));
  if (role.empty()) return fail("the instance has no IAM role");
  ARROW_ASSIGN_OR_RAISE(auto r, http_send("GET", roles_url + role, "", {session}, true, kCredentialTimeoutMs, what));
  if (r.status != 200) return fail(fmt::format("{}{} answered HTTP {}", roles_url, role, r.status));
  return parse_credentials_json(r.body, what + " at " + base);
}

}  // namespace sluice::storage
