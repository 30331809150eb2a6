// Service-account tokens for GCS (gcs_credentials.h).
#include "sluice/storage/gcs_credentials.h"

#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "sluice/common/json_fields.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/storage/http_util.h"

namespace sluice::storage {

namespace {

constexpr const char* kGcsScope = "https://www.googleapis.com/auth/devstorage.read_write";
constexpr long kGcsTokenTimeoutMs = 10'000;

std::string jwt_base64url(std::string_view data) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const uint32_t n = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8) | uint8_t(data[i + 2]);
    out += {kAlphabet[n >> 18], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63], kAlphabet[n & 63]};
  }
  if (i + 1 == data.size()) {
    const uint32_t n = uint8_t(data[i]) << 16;
    out += {kAlphabet[n >> 18], kAlphabet[(n >> 12) & 63]};
  } else if (i + 2 == data.size()) {
    const uint32_t n = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8);
    out += {kAlphabet[n >> 18], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63]};
  }
  return out;
}

struct JwtBioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct JwtPkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct JwtMdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

}  // namespace

arrow::Result<GcsServiceAccount> parse_gcs_service_account(const std::string& text, const std::string& source) {
  auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return invalid("the GCS service-account key from {} is not a JSON object; give the key file Google "
                   "issued (IAM > Service accounts > Keys, JSON)",
                   source);
  }
  auto field = [&](const char* name) {
    return json.contains(name) && json[name].is_string() ? json[name].get<std::string>() : std::string();
  };
  const std::string type = field("type");
  if (!type.empty() && type != "service_account") {
    return arrow::Status::NotImplemented(fmt::format(
        "the GCS credentials from {} are of type '{}', which sluice does not support yet (only "
        "service_account keys); use a service-account key or GOOGLE_OAUTH_ACCESS_TOKEN",
        source, type));
  }
  GcsServiceAccount a;
  a.source = source;
  a.client_email = field("client_email");
  a.private_key = field("private_key");
  a.private_key_id = field("private_key_id");
  if (!field("token_uri").empty()) a.token_uri = field("token_uri");
  a.disable_oauth = json.contains("disable_oauth") && json["disable_oauth"].is_boolean() &&
                    json["disable_oauth"].get<bool>();
  if (!a.disable_oauth && (a.client_email.empty() || a.private_key.empty())) {
    return invalid("the GCS service-account key from {} has no {}; give the whole key file Google issued",
                   source, a.client_email.empty() ? "client_email" : "private_key");
  }
  a.base_url = field("gcs_base_url");
  while (!a.base_url.empty() && a.base_url.back() == '/') a.base_url.pop_back();
  const bool http = a.token_uri.rfind("http://", 0) == 0;
  if (!a.disable_oauth && (http ? !is_loopback_url(a.token_uri) : a.token_uri.rfind("https://", 0) != 0)) {
    return invalid("the token_uri '{}' of the GCS service-account key from {} must be https (plain http only to "
                   "the loopback, for a local test server)",
                   a.token_uri, source);
  }
  return a;
}

arrow::Result<std::string> gcs_jwt_assertion(const GcsServiceAccount& account, const std::string& scope,
                                             int64_t now_unix) {
  nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (!account.private_key_id.empty()) header["kid"] = account.private_key_id;
  const nlohmann::json claims = {{"iss", account.client_email}, {"scope", scope},     {"aud", account.token_uri},
                                 {"iat", now_unix},             {"exp", now_unix + 3600}};
  const std::string signing_input = jwt_base64url(header.dump()) + "." + jwt_base64url(claims.dump());
  std::unique_ptr<BIO, JwtBioDeleter> bio(BIO_new_mem_buf(account.private_key.data(), static_cast<int>(account.private_key.size())));
  std::unique_ptr<EVP_PKEY, JwtPkeyDeleter> key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) {
    return invalid("the private_key of the GCS service-account key from {} is not a PEM private key; give the "
                   "whole key file Google issued",
                   account.source);
  }
  std::unique_ptr<EVP_MD_CTX, JwtMdCtxDeleter> ctx(EVP_MD_CTX_new());
  size_t size = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(signing_input.data());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size, data, signing_input.size()) != 1) {
    return invalid("cannot sign with the private_key of the GCS service-account key from {} (is it an RSA key?)",
                   account.source);
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size, data,
                     signing_input.size()) != 1) {
    return invalid("cannot sign with the private_key of the GCS service-account key from {}", account.source);
  }
  signature.resize(size);
  return signing_input + "." + jwt_base64url(signature);
}

arrow::Result<std::shared_ptr<GcsTokenProvider>> GcsTokenProvider::Make(GcsServiceAccount account) {
  std::shared_ptr<GcsTokenProvider> provider(new GcsTokenProvider(std::move(account)));
  ARROW_RETURN_NOT_OK(provider->get().status());
  return provider;
}

int64_t GcsTokenProvider::fetches() const { return cache_.fetches(); }

arrow::Result<GcsToken> GcsTokenProvider::get() {
  if (account_.disable_oauth) return GcsToken{};
  return cache_.get(unix_now(), [this] { return fetch(); });
}

arrow::Result<GcsToken> GcsTokenProvider::fetch() const {
  const int64_t now = unix_now();
  ARROW_ASSIGN_OR_RAISE(auto assertion, gcs_jwt_assertion(account_, kGcsScope, now));
  const std::string body =
      "grant_type=" + percent_encode("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion=" + assertion;
  const std::string what = "the OAuth2 token endpoint of the GCS service-account key from " + account_.source;
  ARROW_ASSIGN_OR_RAISE(auto r, http_send("POST", account_.token_uri, body,
                                          {"Content-Type: application/x-www-form-urlencoded"}, true, kGcsTokenTimeoutMs,
                                          what));
  auto json = nlohmann::json::parse(r.body, nullptr, false);
  if (r.status != 200) {
    std::string why = fmt::format("HTTP {}", r.status);
    if (json.is_object() && json.contains("error") && json["error"].is_string()) {
      why += ": " + json["error"].get<std::string>();
      if (json.contains("error_description") && json["error_description"].is_string()) {
        why += " (" + json["error_description"].get<std::string>() + ")";
      }
    }
    auto st = invalid("{} ({}) refused the key of {}: {}; check that the key is current (not deleted) and the "
                      "service account enabled",
                      what, account_.token_uri, account_.client_email, why);
    return r.status >= 500 || r.status == 429 ? mark_retryable(st) : st;
  }
  if (!json.is_object() || !json.contains("access_token") || !json["access_token"].is_string()) {
    return invalid("{} ({}) answered without an access_token", what, account_.token_uri);
  }
  GcsToken token;
  token.access_token = json["access_token"].get<std::string>();
  const int64_t expires_in =
      json.contains("expires_in") && json["expires_in"].is_number_integer() ? json["expires_in"].get<int64_t>() : 3600;
  token.expires_unix = saturating_add(now, expires_in);  // a hostile expires_in must not overflow
  return token;
}

}  // namespace sluice::storage
