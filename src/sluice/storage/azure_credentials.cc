// Azure AD client-credentials tokens (azure_credentials.h).
#include "sluice/storage/azure_credentials.h"

#include <nlohmann/json.hpp>

#include <cctype>

#include "sluice/common/json_fields.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/storage/http_util.h"

namespace sluice::storage {

namespace {

constexpr const char* kStorageScope = "https://storage.azure.com/.default";
constexpr long kAzureTokenTimeoutMs = 10'000;
constexpr const char* kAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

}  // namespace

std::string azure_token_url(const AzureAdIdentity& identity) {
  return identity.authority_host + "/" + percent_encode(identity.tenant_id, "") + "/oauth2/v2.0/token";
}

arrow::Result<std::shared_ptr<AzureTokenProvider>> AzureTokenProvider::Make(AzureAdIdentity identity) {
  std::shared_ptr<AzureTokenProvider> provider(new AzureTokenProvider(std::move(identity)));
  ARROW_RETURN_NOT_OK(provider->get().status());
  return provider;
}

int64_t AzureTokenProvider::fetches() const {
  std::lock_guard lock(mutex_);
  return fetches_;
}

arrow::Result<AzureToken> AzureTokenProvider::get() {
  std::lock_guard lock(mutex_);
  const int64_t now = unix_now();
  const bool have = !current_.access_token.empty();
  if (have && now < current_.expires_unix - (current_.expires_unix - fetched_unix_) / 2) return current_;
  auto fetched = fetch();
  if (!fetched.ok()) {
    if (have && now < current_.expires_unix) return current_;
    return fetched.status();
  }
  current_ = std::move(*fetched);
  fetched_unix_ = now;
  ++fetches_;
  return current_;
}

arrow::Result<AzureToken> AzureTokenProvider::fetch() const {
  const int64_t now = unix_now();
  const std::string url = azure_token_url(identity_);
  std::string body = "grant_type=client_credentials&client_id=" + percent_encode(identity_.client_id, "") +
                     "&scope=" + percent_encode(kStorageScope, "");
  const bool federated = identity_.client_secret.empty();
  if (federated) {
    // Workload identity: the projected token is rotated in place, so it is read at each fetch.
    ARROW_ASSIGN_OR_RAISE(std::string assertion,
                          read_text_file(identity_.federated_token_file, "AZURE_FEDERATED_TOKEN_FILE"));
    while (!assertion.empty() && std::isspace(static_cast<unsigned char>(assertion.back()))) assertion.pop_back();
    body += "&client_assertion_type=" + percent_encode(kAssertionType, "") +
            "&client_assertion=" + percent_encode(assertion, "");
  } else {
    body += "&client_secret=" + percent_encode(identity_.client_secret, "");
  }
  const std::string what = "the Azure AD token endpoint (AZURE_AUTHORITY_HOST)";
  ARROW_ASSIGN_OR_RAISE(auto r, http_send("POST", url, body, {"Content-Type: application/x-www-form-urlencoded"},
                                          false, kAzureTokenTimeoutMs, what, {}, TlsTrust::kSslCertEnv));
  auto json = nlohmann::json::parse(r.body, nullptr, false);
  if (r.status != 200) {
    std::string why = fmt::format("HTTP {}", r.status);
    if (json.is_object() && json.contains("error") && json["error"].is_string()) {
      why += " " + json["error"].get<std::string>();
      if (json.contains("error_description") && json["error_description"].is_string()) {
        const std::string text = json["error_description"].get<std::string>();
        why += ": " + text.substr(0, text.find_first_of("\r\n"));
      }
    }
    auto st = invalid("{} at {} refused the client credentials of client id '{}' in tenant '{}': {}; check "
                      "{}, AZURE_CLIENT_ID and AZURE_TENANT_ID",
                      what, url, identity_.client_id, identity_.tenant_id, why,
                      federated ? "AZURE_FEDERATED_TOKEN_FILE (" + identity_.federated_token_file +
                                      ": is the token current and trusted for this app?)"
                                : std::string("AZURE_CLIENT_SECRET (azure_client_secret: is it current?)"));
    return r.status >= 500 || r.status == 429 ? mark_retryable(st) : st;
  }
  if (!json.is_object() || !json.contains("access_token") || !json["access_token"].is_string()) {
    return invalid("{} at {} answered without an access_token", what, url);
  }
  AzureToken token;
  token.access_token = json["access_token"].get<std::string>();
  // expires_in is a number in AAD v2 answers, a string in some v1-style ones.
  int64_t expires_in = 3600;
  if (json.contains("expires_in")) {
    const auto& e = json["expires_in"];
    if (e.is_number_integer()) expires_in = e.get<int64_t>();
    if (e.is_string()) {
      const auto parsed = parse_int64(e.get_ref<const std::string&>(), "expires_in");
      if (!parsed.ok()) return invalid("{} at {} answered an expires_in that is not a number of seconds", what, url);
      expires_in = *parsed;
    }
  }
  token.expires_unix = saturating_add(now, std::max<int64_t>(expires_in, 0));  // a hostile expires_in must not overflow
  return token;
}

}  // namespace sluice::storage
