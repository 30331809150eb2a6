// libcurl + SharedKey / SAS requests to Azure Blob Storage (azure_client.h).
#include "sluice/storage/azure_client.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/storage/http_util.h"
#include "sluice/storage/s3_client.h"  // xml_values

namespace sluice::storage {

namespace {

// Azurite's well-known development account (public, in Azurite's README and every Azure SDK).
constexpr const char* kEmulatorAccount = "devstoreaccount1";
constexpr const char* kEmulatorKey =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
// A REST version every current Azure and Azurite (3.20+) accepts.
constexpr const char* kApiVersion = "2021-12-02";

// Strict base64 decoding; nullopt-like empty result with ok=false on bad input.
bool base64_decode(const std::string& in, std::string& out) {
  if (in.empty() || in.size() % 4 != 0) return false;
  out.resize(in.size() / 4 * 3);
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return false;
  size_t pad = 0;
  if (in.back() == '=') ++pad;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return true;
}

std::string base64_encode(const unsigned char* data, size_t size) {
  std::string out(4 * ((size + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<size_t>(n));
  return out;
}

// "Sun, 06 Dec 2026 09:30:00 GMT" (RFC 1123, C locale names).
std::string rfc1123_now() {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  return fmt::format("{}, {:02d} {} {} {:02d}:{:02d}:{:02d} GMT", kDays[tm.tm_wday], tm.tm_mday, kMonths[tm.tm_mon],
                     tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// "Name=value;Name=value" (an Azure connection string) -> fields by name.
std::map<std::string, std::string> connection_fields(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(';', start);
    if (end == std::string::npos) end = text.size();
    const std::string part = text.substr(start, end - start);
    const auto eq = part.find('=');
    if (eq != std::string::npos) out[part.substr(0, eq)] = part.substr(eq + 1);
    start = end + 1;
  }
  return out;
}

// A service principal's settings complete, its authority host and the storage endpoint https.
arrow::Status check_ad_identity(AzureConfig& c, std::string authority_host) {
  const char* credential = c.ad.client_secret.empty() ? "AZURE_FEDERATED_TOKEN_FILE" : "AZURE_CLIENT_SECRET";
  for (const auto& [value, key] :
       {std::pair{&c.ad.tenant_id, "AZURE_TENANT_ID"}, {&c.ad.client_id, "AZURE_CLIENT_ID"}}) {
    if (value->empty()) {
      return invalid("{} is set for Azure account '{}' but {} is not: a service principal needs "
                     "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE "
                     "(environment or storage_options azure_tenant_id, azure_client_id, ...)",
                     credential, c.account, key);
    }
  }
  while (!authority_host.empty() && authority_host.back() == '/') authority_host.pop_back();
  if (!authority_host.empty()) {
    if (authority_host.rfind("https://", 0) != 0) {
      return invalid("AZURE_AUTHORITY_HOST '{}' must be an https:// URL: a client secret is sent only over "
                     "TLS (the Azure SDK inside Arrow refuses anything else)",
                     authority_host);
    }
    c.ad.authority_host = authority_host;
  }
  if (c.endpoint.rfind("https://", 0) != 0) {
    return invalid("Azure endpoint {} is plain http: Azure AD tokens ({}) are sent only over "
                   "https (Azure and Azurite refuse a bearer token over http); use an https endpoint (for "
                   "Azurite: --cert, --key and --oauth basic) or an account key / SAS token",
                   c.endpoint, credential);
  }
  return arrow::Status::OK();
}

// Arrow's Azure SDK credentials read the authority host (workload identity also the tenant,
// client id and token file) only from the process environment, when AzureFileSystem::Make makes
// them (AzureOptions takes no credential options nor a TokenCredential). sluice never changes its
// environment (setenv beside threads that call getenv is undefined behaviour), so a storage
// option that the SDK would not see must agree with the environment, or both paths would not use
// the same identity.
arrow::Status check_sdk_environment(const AzureConfig& c, const std::map<std::string, std::string>& options,
                                    const AzureEnvironment& env) {
  auto trimmed = [](std::string v) {
    while (!v.empty() && v.back() == '/') v.pop_back();
    return v;
  };
  struct Check {
    const char* key;
    const char* option;
    std::string value, in_environment, shown;
  };
  std::string host = trimmed(env("AZURE_AUTHORITY_HOST"));
  const std::string host_shown = host.empty() ? "not set: the SDK uses " + AzureAdIdentity{}.authority_host : host;
  if (host.empty()) host = AzureAdIdentity{}.authority_host;
  std::vector<Check> checks = {{"AZURE_AUTHORITY_HOST", "azure_authority_host", c.ad.authority_host, host, host_shown}};
  if (c.ad.client_secret.empty()) {
    for (const auto& [key, option, value] :
         {std::tuple{"AZURE_TENANT_ID", "azure_tenant_id", &c.ad.tenant_id},
          {"AZURE_CLIENT_ID", "azure_client_id", &c.ad.client_id},
          {"AZURE_FEDERATED_TOKEN_FILE", "azure_federated_token_file", &c.ad.federated_token_file}}) {
      const std::string e = env(key);
      checks.push_back({key, option, *value, e, e.empty() ? "not set" : e});
    }
  }
  for (const auto& check : checks) {
    if (options.count(check.key) == 0 || check.value == check.in_environment) continue;
    return invalid("storage option {} ('{}') for Azure account '{}' differs from {} in sluice's environment ({}): "
                   "the Azure SDK inside Arrow, which reads and writes the data files, takes it only from the "
                   "environment; set {}={} in sluice's environment (the storage option may stay if it is equal)",
                   check.option, check.value, c.account, check.key, check.shown, check.key, check.value);
  }
  return arrow::Status::OK();
}

}  // namespace

std::string azure_error_code(const AzureResponse& response) {
  auto it = response.headers.find("x-ms-error-code");
  if (it != response.headers.end()) return it->second;
  auto code = xml_values(response.body, "Code");
  return code.empty() ? "" : code[0];
}

std::string azure_error_text(const AzureResponse& response) {
  std::string out = fmt::format("HTTP {}", response.status);
  const std::string code = azure_error_code(response);
  if (!code.empty()) out += " " + code;
  auto message = xml_values(response.body, "Message");
  if (!message.empty()) out += ": " + message[0].substr(0, message[0].find('\n'));
  return out;
}

arrow::Result<AzureConfig> azure_config_from(const std::map<std::string, std::string>& options,
                                             const std::string& uri_account) {
  return azure_config_from(options, uri_account, [](const char* key) { return env_or_empty(key); });
}

arrow::Result<AzureConfig> azure_config_from(const std::map<std::string, std::string>& options,
                                             const std::string& uri_account, const AzureEnvironment& env) {
  auto explicit_option = [&](const char* key) { return options.count(key) > 0; };
  auto get = [&](const char* key) {
    auto it = options.find(key);
    return it != options.end() ? it->second : env(key);
  };
  auto flag = [&](const char* key) -> arrow::Result<bool> {
    const std::string v = to_lower(get(key));
    if (v.empty() || v == "false" || v == "0") return false;
    if (v == "true" || v == "1") return true;
    return invalid("{} is '{}'; write true or false", key, v);
  };
  AzureConfig c;
  c.account = get("AZURE_STORAGE_ACCOUNT_NAME");
  c.account_key = get("AZURE_STORAGE_ACCOUNT_KEY");
  c.sas_token = get("AZURE_STORAGE_SAS_TOKEN");
  // Where the key or SAS token came from: storage_options (explicit) or the environment.
  bool keyed_explicitly = (!c.account_key.empty() && explicit_option("AZURE_STORAGE_ACCOUNT_KEY")) ||
                          (!c.sas_token.empty() && explicit_option("AZURE_STORAGE_SAS_TOKEN"));
  c.endpoint = get("AZURE_STORAGE_ENDPOINT");
  ARROW_ASSIGN_OR_RAISE(bool emulator, flag("AZURE_STORAGE_USE_EMULATOR"));
  ARROW_ASSIGN_OR_RAISE(c.allow_http, flag("AZURE_ALLOW_HTTP"));
  // A connection string fills what the explicit keys leave open.
  if (const std::string cs = get("AZURE_STORAGE_CONNECTION_STRING"); !cs.empty()) {
    auto f = connection_fields(cs);
    if (to_lower(f["UseDevelopmentStorage"]) == "true") emulator = true;
    if (c.account.empty()) c.account = f["AccountName"];
    if (c.account_key.empty() && c.sas_token.empty()) {
      c.account_key = f["AccountKey"];
      c.sas_token = f["SharedAccessSignature"];
      keyed_explicitly = explicit_option("AZURE_STORAGE_CONNECTION_STRING");
    }
    if (c.endpoint.empty()) c.endpoint = f["BlobEndpoint"];
    if (c.endpoint.empty() && !c.account.empty() && !emulator) {
      const std::string protocol = f["DefaultEndpointsProtocol"].empty() ? "https" : f["DefaultEndpointsProtocol"];
      const std::string suffix = f["EndpointSuffix"].empty() ? "core.windows.net" : f["EndpointSuffix"];
      c.endpoint = fmt::format("{}://{}.blob.{}", protocol, c.account, suffix);
    }
    if (to_lower(f["DefaultEndpointsProtocol"]) == "http") c.allow_http = true;
  }
  if (!uri_account.empty()) {
    if (!c.account.empty() && c.account != uri_account) {
      return invalid("the Azure URI names account '{}' but AZURE_STORAGE_ACCOUNT_NAME (or the "
                     "connection string) says '{}'; make them agree or drop one",
                     uri_account, c.account);
    }
    c.account = uri_account;
  }
  // Precedence: storage_options credentials over the environment's; the emulator over a service
  // principal that only the environment names (a developer's shell may hold one for other tools).
  // Two kinds from the same source are refused: sluice would use only one.
  std::string secret = get("AZURE_CLIENT_SECRET");
  const bool secret_explicitly = !secret.empty() && explicit_option("AZURE_CLIENT_SECRET");
  const bool keyed = !c.account_key.empty() || !c.sas_token.empty();
  if (!secret.empty() && keyed) {
    if (secret_explicitly == keyed_explicitly) {
      return invalid("both {} and AZURE_CLIENT_SECRET (a service principal) are set {} for Azure account '{}': "
                     "sluice would use only one; remove one of them",
                     c.account_key.empty() ? "AZURE_STORAGE_SAS_TOKEN" : "AZURE_STORAGE_ACCOUNT_KEY",
                     secret_explicitly ? "in storage_options" : "in the environment",
                     c.account.empty() ? std::string(emulator ? kEmulatorAccount : "") : c.account);
    }
    if (secret_explicitly) {
      c.account_key.clear();
      c.sas_token.clear();
    } else {
      secret.clear();
    }
  }
  if (emulator && !secret_explicitly) secret.clear();
  c.ad.client_secret = secret;
  c.ad.client_id = get("AZURE_CLIENT_ID");
  c.ad.tenant_id = get("AZURE_TENANT_ID");
  // Workload identity ranks below every explicit credential: AKS puts AZURE_FEDERATED_TOKEN_FILE
  // in every pod's environment.
  if (!c.uses_ad() && c.account_key.empty() && c.sas_token.empty() && !emulator) {
    c.ad.federated_token_file = get("AZURE_FEDERATED_TOKEN_FILE");
  }
  if (emulator) {
    if (c.account.empty()) c.account = kEmulatorAccount;
    if (c.account_key.empty() && c.sas_token.empty() && !c.uses_ad()) c.account_key = kEmulatorKey;
    if (c.endpoint.empty()) {
      std::string base = get("AZURITE_BLOB_STORAGE_URL");
      if (base.empty()) base = "http://127.0.0.1:10000";
      while (!base.empty() && base.back() == '/') base.pop_back();
      c.endpoint = base + "/" + c.account;
    }
    c.allow_http = true;
  }
  if (c.account.empty()) {
    return invalid("no Azure storage account: set AZURE_STORAGE_ACCOUNT_NAME (environment or "
                   "storage_options), write abfss://container@<account>.dfs.core.windows.net/..., "
                   "or set AZURE_STORAGE_USE_EMULATOR=true for Azurite");
  }
  if (c.endpoint.empty()) c.endpoint = fmt::format("https://{}.blob.core.windows.net", c.account);
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
  if (c.endpoint.rfind("http://", 0) == 0) {
    if (!c.allow_http) {
      return invalid("Azure endpoint {} is plain http: set AZURE_ALLOW_HTTP=true (or "
                     "AZURE_STORAGE_USE_EMULATOR=true for Azurite) to allow it, or use https",
                     c.endpoint);
    }
  } else if (c.endpoint.rfind("https://", 0) != 0) {
    return invalid("Azure endpoint '{}' (AZURE_STORAGE_ENDPOINT) must start with http:// or https://", c.endpoint);
  }
  if (!c.sas_token.empty() && c.sas_token.front() == '?') c.sas_token.erase(0, 1);
  if (c.uses_ad()) {
    ARROW_RETURN_NOT_OK(check_ad_identity(c, get("AZURE_AUTHORITY_HOST")));
    ARROW_RETURN_NOT_OK(check_sdk_environment(c, options, env));
  } else if (c.account_key.empty() && c.sas_token.empty()) {
    // The Azure SDKs' other identity variables: named when set, so that the user sees they are
    // not used rather than wonder why.
    std::string ad;
    for (const char* key : {"AZURE_CLIENT_ID", "AZURE_TENANT_ID"}) {
      if (!get(key).empty()) ad += (ad.empty() ? "" : ", ") + std::string(key);
    }
    return invalid("no Azure credentials for account '{}': set AZURE_STORAGE_ACCOUNT_KEY or "
                   "AZURE_STORAGE_SAS_TOKEN (or AZURE_STORAGE_CONNECTION_STRING), or a service principal's "
                   "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_FEDERATED_TOKEN_FILE), "
                   "in the environment or storage_options; managed identity and az login are not supported "
                   "yet{}",
                   c.account, ad.empty() ? "" : fmt::format(" ({} set but not used)", ad));
  }
  std::string decoded;
  if (!c.account_key.empty() && !base64_decode(c.account_key, decoded)) {
    return invalid("AZURE_STORAGE_ACCOUNT_KEY for account '{}' is not base64 (copy the key from the "
                   "portal's Access keys page as it is)",
                   c.account);
  }
  return c;
}

AzureClient::AzureClient(AzureConfig config, std::shared_ptr<AzureTokenProvider> tokens)
    : config_(std::move(config)), tokens_(std::move(tokens)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (config_.sas_token.empty() && !config_.uses_ad()) {
    base64_decode(config_.account_key, key_bytes_);  // checked in azure_config_from
  }
}

arrow::Result<AzureResponse> AzureClient::send(const std::string& method, const std::string& container,
                                               const std::string& blob, const AzureQuery& query,
                                               const std::string& body,
                                               const std::vector<std::string>& headers) const {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return io_error("cannot start an HTTP request to {} (curl_easy_init failed)", config_.endpoint);
  std::string path = "/" + percent_encode(container, "");
  if (!blob.empty()) path += "/" + percent_encode(blob, "/");
  std::string url = config_.endpoint + path;
  std::string url_query;
  for (const auto& [name, value] : query) {
    url_query += (url_query.empty() ? "" : "&") + name + "=" + percent_encode(value, "");
  }
  if (!config_.sas_token.empty()) url_query += (url_query.empty() ? "" : "&") + config_.sas_token;
  if (!url_query.empty()) url += "?" + url_query;

  std::vector<std::string> lines = headers;
  lines.push_back("x-ms-date: " + rfc1123_now());
  lines.push_back(std::string("x-ms-version: ") + kApiVersion);
  const bool has_body = method == "PUT";
  if (has_body) lines.push_back("Content-Type: application/octet-stream");
  if (config_.uses_ad()) {
    if (!tokens_) return invalid("Azure {} az://{}/{}: no Azure AD token provider (a bug)", method, container, blob);
    ARROW_ASSIGN_OR_RAISE(auto token, tokens_->get());
    lines.push_back("Authorization: Bearer " + token.access_token);
  } else if (config_.sas_token.empty()) {
    // SharedKey: https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key
    std::map<std::string, std::string> standard;  // the standard headers the signature covers
    std::vector<std::pair<std::string, std::string>> ms;
    for (const auto& line : lines) {
      const auto colon = line.find(':');
      std::string name = to_lower(line.substr(0, colon));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (name.rfind("x-ms-", 0) == 0) {
        ms.emplace_back(std::move(name), std::move(value));
      } else {
        standard[name] = std::move(value);
      }
    }
    std::sort(ms.begin(), ms.end());
    std::string to_sign = method + "\n";
    to_sign += standard["content-encoding"] + "\n" + standard["content-language"] + "\n";
    to_sign += (has_body && !body.empty() ? std::to_string(body.size()) : "") + "\n";
    to_sign += standard["content-md5"] + "\n" + standard["content-type"] + "\n";
    to_sign += "\n";  // Date: x-ms-date is used instead
    to_sign += standard["if-modified-since"] + "\n" + standard["if-match"] + "\n" + standard["if-none-match"] + "\n";
    to_sign += standard["if-unmodified-since"] + "\n" + standard["range"] + "\n";
    for (const auto& [name, value] : ms) to_sign += name + ":" + value + "\n";
    // The resource: /account + the URL's path (Azurite's path-style URL repeats the account).
    const auto host_start = config_.endpoint.find("://") + 3;
    const auto endpoint_path = config_.endpoint.find('/', host_start);
    to_sign += "/" + config_.account +
               (endpoint_path == std::string::npos ? "" : config_.endpoint.substr(endpoint_path)) + path;
    auto sorted = query;
    for (auto& [name, value] : sorted) name = to_lower(name);
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [name, value] : sorted) to_sign += "\n" + name + ":" + value;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_size = 0;
    HMAC(EVP_sha256(), key_bytes_.data(), static_cast<int>(key_bytes_.size()),
         reinterpret_cast<const unsigned char*>(to_sign.data()), to_sign.size(), mac, &mac_size);
    lines.push_back("Authorization: SharedKey " + config_.account + ":" + base64_encode(mac, mac_size));
  }
  lines.push_back("Expect:");
  curl_slist* list = nullptr;
  for (const auto& h : lines) list = curl_slist_append(list, h.c_str());
  std::unique_ptr<curl_slist, SlistDeleter> header_list(list);

  AzureResponse response;
  CURL* c = curl.get();
  curl_prepare(c, url, config_.allow_http, &response.body, &response.headers);
  curl_set_method(c, method, body, method != "GET" && method != "HEAD" && has_body);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list.get());
  curl_trust_ssl_cert_env(c);
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    // The URL is not printed: it may carry the SAS token.
    const std::string tls = curl_tls_hint(rc);
    if (!tls.empty()) {  // an untrusted certificate stays untrusted: not retryable
      return io_error("Azure {} az://{}/{}: cannot reach {}: {}{}", method, container, blob, config_.endpoint,
                      curl_easy_strerror(rc), tls);
    }
    return mark_retryable(io_error("Azure {} az://{}/{}: cannot reach {}: {} (is the endpoint right "
                                   "and the server running? check AZURE_STORAGE_ENDPOINT)",
                                   method, container, blob, config_.endpoint, curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace sluice::storage
