// Table location parsing and storage option checks.
#include "sluice/storage/location.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

#include "sluice/common/status.h"

namespace sluice::storage {

namespace {

// The keys delta-rs reads for S3 that sluice uses (and their aliases), with the credential
// chain's (aws_credentials.h), which delta-rs also takes as options.
constexpr std::array<std::string_view, 22> kS3Keys = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
    "AWS_ENDPOINT_URL",  "AWS_ENDPOINT",          "AWS_ALLOW_HTTP",
    "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_ENDPOINT_URL_STS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_METADATA_ENDPOINT",
    "AWS_DEFAULT_REGION"};

// The keys for GCS: delta-rs's (and their aliases), the emulator's (STORAGE_EMULATOR_HOST, as
// Google's clients read it) and an OAuth2 access token (gcs_client.h).
constexpr std::array<std::string_view, 9> kGcsKeys = {
    "GOOGLE_SERVICE_ACCOUNT",     "SERVICE_ACCOUNT",      "GOOGLE_SERVICE_ACCOUNT_PATH",
    "SERVICE_ACCOUNT_PATH",       "GOOGLE_SERVICE_ACCOUNT_KEY", "SERVICE_ACCOUNT_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "GOOGLE_OAUTH_ACCESS_TOKEN"};
// The keys delta-rs (object_store) reads for Azure that sluice uses, and their aliases.
constexpr std::array<std::string_view, 13> kAzureKeys = {
    "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY",       "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_USE_EMULATOR", "AZURE_STORAGE_ENDPOINT",          "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_ALLOW_HTTP",           "AZURITE_BLOB_STORAGE_URL",        "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",        "AZURE_TENANT_ID",                 "AZURE_AUTHORITY_HOST",
    "AZURE_FEDERATED_TOKEN_FILE"};
// object_store's short spellings too (account_key, sas_token, use_emulator, ...); its bare
// "endpoint" is left out: it names the S3 endpoint as well.
constexpr std::array<std::pair<std::string_view, std::string_view>, 25> kAzureAliases = {{
    {"AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_ACCOUNT_KEY"},
    {"AZURE_STORAGE_MASTER_KEY", "AZURE_STORAGE_ACCOUNT_KEY"},
    {"AZURE_STORAGE_SAS_KEY", "AZURE_STORAGE_SAS_TOKEN"},
    {"AZURE_ENDPOINT", "AZURE_STORAGE_ENDPOINT"},
    {"AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME"},
    {"AZURE_USE_EMULATOR", "AZURE_STORAGE_USE_EMULATOR"},
    {"ACCESS_KEY", "AZURE_STORAGE_ACCOUNT_KEY"},
    {"ACCOUNT_KEY", "AZURE_STORAGE_ACCOUNT_KEY"},
    {"MASTER_KEY", "AZURE_STORAGE_ACCOUNT_KEY"},
    {"ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_NAME"},
    {"SAS_TOKEN", "AZURE_STORAGE_SAS_TOKEN"},
    {"SAS_KEY", "AZURE_STORAGE_SAS_TOKEN"},
    {"USE_EMULATOR", "AZURE_STORAGE_USE_EMULATOR"},
    // A service principal (Azure AD client credentials, azure_credentials.h).
    {"AZURE_STORAGE_CLIENT_ID", "AZURE_CLIENT_ID"},
    {"CLIENT_ID", "AZURE_CLIENT_ID"},
    {"AZURE_STORAGE_CLIENT_SECRET", "AZURE_CLIENT_SECRET"},
    {"CLIENT_SECRET", "AZURE_CLIENT_SECRET"},
    {"AZURE_STORAGE_TENANT_ID", "AZURE_TENANT_ID"},
    {"AZURE_STORAGE_AUTHORITY_ID", "AZURE_TENANT_ID"},
    {"AZURE_AUTHORITY_ID", "AZURE_TENANT_ID"},
    {"TENANT_ID", "AZURE_TENANT_ID"},
    {"AUTHORITY_ID", "AZURE_TENANT_ID"},
    {"AZURE_STORAGE_AUTHORITY_HOST", "AZURE_AUTHORITY_HOST"},
    {"AUTHORITY_HOST", "AZURE_AUTHORITY_HOST"},
    {"FEDERATED_TOKEN_FILE", "AZURE_FEDERATED_TOKEN_FILE"},
}};

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

std::string trim_slashes(std::string_view s) {
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return std::string(s);
}

// After "az://", "azure://", "abfs://" or "abfss://": container[@account.dfs.core.windows.net][/prefix].
arrow::Result<Location> parse_azure(Location loc, const std::string& rest, const std::string& what) {
  loc.scheme = Scheme::kAzure;
  const auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  loc.path = slash == std::string::npos ? "" : trim_slashes(std::string_view(rest).substr(slash));
  if (const auto at = authority.find('@'); at != std::string::npos) {
    // delta-rs's spelling: container@<account>.dfs.core.windows.net (or .blob.).
    const std::string host = authority.substr(at + 1);
    const auto dot = host.find('.');
    const std::string domain = dot == std::string::npos ? "" : host.substr(dot);
    if (domain != ".dfs.core.windows.net" && domain != ".blob.core.windows.net") {
      return invalid("{} '{}': the host after '@' must be <account>.dfs.core.windows.net or "
                     "<account>.blob.core.windows.net; for another endpoint (Azurite, a sovereign "
                     "cloud) write az://container/prefix and set AZURE_STORAGE_ENDPOINT",
                     what, loc.uri);
    }
    loc.account = host.substr(0, dot);
    authority = authority.substr(0, at);
  }
  loc.bucket = authority;
  if (loc.bucket.empty()) return invalid("{} '{}' names no container; write az://container/prefix", what, loc.uri);
  if (loc.bucket.find_first_of("?#:") != std::string::npos || loc.path.find_first_of("?#") != std::string::npos ||
      (!loc.account.empty() && loc.account.find(':') != std::string::npos)) {
    return invalid("{} '{}': query strings (SAS tokens) or ports in an Azure URI are not supported; "
                   "give credentials and the endpoint as AZURE_STORAGE_ACCOUNT_KEY, "
                   "AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_ENDPOINT (environment or storage_options)",
                   what, loc.uri);
  }
  return loc;
}

}  // namespace

bool is_object_store_uri(const std::string& text) {
  const auto pos = text.find("://");
  if (pos == std::string::npos || pos == 0) return false;
  for (size_t i = 0; i < pos; ++i) {
    const char c = text[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return false;
  }
  return upper(text.substr(0, pos)) != "FILE";
}

arrow::Result<Location> parse_location(const std::string& text, const std::string& what) {
  Location loc;
  loc.uri = text;
  const auto pos = text.find("://");
  if (pos == std::string::npos || !is_object_store_uri(text)) {
    loc.scheme = Scheme::kLocal;
    loc.path = pos != std::string::npos && upper(text.substr(0, pos)) == "FILE" ? text.substr(pos + 3) : text;
    if (loc.path.empty()) return invalid("{} '{}' names no folder; give a path or s3://bucket/prefix", what, text);
    return loc;
  }
  const std::string scheme = upper(text.substr(0, pos));
  if (scheme == "ADL") {
    return arrow::Status::NotImplemented(fmt::format(
        "{} '{}': {}:// storage is not supported yet (only local paths, file://, s3://, gs:// and az:// "
        "are); use an S3-compatible endpoint or a local path",
        what, text, text.substr(0, pos)));
  }
  if (scheme == "AZ" || scheme == "AZURE" || scheme == "ABFS" || scheme == "ABFSS") {
    return parse_azure(std::move(loc), text.substr(pos + 3), what);
  }
  if (scheme != "S3" && scheme != "S3A" && scheme != "GS") {
    return invalid("{} '{}' has an unknown scheme '{}://'; use a local path, file:///path, "
                   "s3://bucket/prefix, gs://bucket/prefix or az://container/prefix",
                   what, text, text.substr(0, pos));
  }
  const bool gcs = scheme == "GS";
  loc.scheme = gcs ? Scheme::kGcs : Scheme::kS3;
  const std::string rest = text.substr(pos + 3);
  const auto slash = rest.find('/');
  loc.bucket = rest.substr(0, slash);
  loc.path = slash == std::string::npos ? "" : trim_slashes(std::string_view(rest).substr(slash));
  const char* example = gcs ? "gs://bucket/prefix" : "s3://bucket/prefix";
  if (loc.bucket.empty()) return invalid("{} '{}' names no bucket; write {}", what, text, example);
  if (loc.bucket.find_first_of("?#@:") != std::string::npos || loc.path.find_first_of("?#") != std::string::npos) {
    return invalid("{} '{}': query strings, credentials or ports in an {}:// URI are not supported; "
                   "give the endpoint and credentials as {} (environment or storage_options)",
                   what, text, gcs ? "gs" : "s3",
                   gcs ? "STORAGE_EMULATOR_HOST, GOOGLE_OAUTH_ACCESS_TOKEN, ..."
                       : "AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...");
  }
  return loc;
}

arrow::Result<StorageOptions> normalize_storage_options(const StorageOptions& options) {
  StorageOptions out;
  for (const auto& [key, value] : options) {
    std::string k = upper(key);
    for (const auto& [alias, canonical] : kAzureAliases) {
      if (k == alias) k = canonical;
    }
    if (std::find(kS3Keys.begin(), kS3Keys.end(), k) == kS3Keys.end() &&
        std::find(kGcsKeys.begin(), kGcsKeys.end(), k) == kGcsKeys.end() &&
        std::find(kAzureKeys.begin(), kAzureKeys.end(), k) == kAzureKeys.end()) {
      // delta-rs's other Azure AD identities (object_store's spellings, with and without the prefix).
      static constexpr std::array<std::string_view, 6> kAzureAd = {
          "AZURE_MSI_ENDPOINT", "AZURE_IDENTITY_ENDPOINT", "IDENTITY_ENDPOINT",
          "MSI_ENDPOINT",       "AZURE_USE_AZURE_CLI",     "USE_AZURE_CLI"};
      if (std::find(kAzureAd.begin(), kAzureAd.end(), k) != kAzureAd.end()) {
        return arrow::Status::NotImplemented(fmt::format(
            "storage option '{}' is not supported yet: of the Azure AD identities only a service principal "
            "(azure_tenant_id, azure_client_id and azure_client_secret or azure_federated_token_file) is; "
            "managed identity and az login are not. Use those, azure_storage_account_key, "
            "azure_storage_sas_token or azure_storage_connection_string",
            key));
      }
      std::string known;
      for (auto s : kS3Keys) known += (known.empty() ? "" : ", ") + std::string(s);
      for (auto s : kGcsKeys) known += ", " + std::string(s);
      for (auto s : kAzureKeys) known += ", " + std::string(s);
      return arrow::Status::NotImplemented(fmt::format(
          "storage option '{}' is not supported (yet); the supported ones are {}", key, known));
    }
    if (k == "AWS_ENDPOINT") k = "AWS_ENDPOINT_URL";
    if (k == "SERVICE_ACCOUNT" || k == "GOOGLE_SERVICE_ACCOUNT_PATH" || k == "SERVICE_ACCOUNT_PATH") {
      k = "GOOGLE_SERVICE_ACCOUNT";
    }
    if (k == "SERVICE_ACCOUNT_KEY") k = "GOOGLE_SERVICE_ACCOUNT_KEY";
    out[k] = value;
  }
  return out;
}

Scheme option_scheme(const std::string& normalized_key) {
  if (normalized_key.rfind("AWS_", 0) == 0) return Scheme::kS3;
  if (normalized_key.rfind("AZURE_", 0) == 0 || normalized_key.rfind("AZURITE_", 0) == 0) return Scheme::kAzure;
  return Scheme::kGcs;
}

const char* scheme_name(Scheme scheme) {
  switch (scheme) {
    case Scheme::kS3: return "S3";
    case Scheme::kAzure: return "Azure Blob";
    case Scheme::kGcs: return "GCS";
    case Scheme::kLocal: break;
  }
  return "a local folder";
}

arrow::Status check_option_applies(Scheme scheme, const std::string& uri, const std::string& key,
                                   const std::string& normalized) {
  const Scheme owner = option_scheme(normalized);
  if (owner == scheme) return arrow::Status::OK();
  return invalid("storage option '{}' is for {} and does not apply to {} ({} storage); remove it", key,
                 scheme_name(owner), uri, scheme_name(scheme));
}

}  // namespace sluice::storage
