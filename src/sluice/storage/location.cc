// Table location parsing and storage option checks.
#include "sluice/storage/location.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

#include "sluice/common/status.h"

namespace sluice::storage {

namespace {

// The keys delta-rs reads for S3 that sluice uses (and their aliases).
constexpr std::array<std::string_view, 7> kS3Keys = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
    "AWS_ENDPOINT_URL",  "AWS_ENDPOINT",          "AWS_ALLOW_HTTP"};

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

std::string trim_slashes(std::string_view s) {
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return std::string(s);
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
  if (scheme == "AZ" || scheme == "ABFS" || scheme == "ABFSS" || scheme == "ADL" || scheme == "GS" ||
      scheme == "GCS") {
    return arrow::Status::NotImplemented(fmt::format(
        "{} '{}': {}:// storage is not supported yet (only local paths, file:// and s3:// are); "
        "use an S3-compatible endpoint or a local path",
        what, text, text.substr(0, pos)));
  }
  if (scheme != "S3" && scheme != "S3A") {
    return invalid("{} '{}' has an unknown scheme '{}://'; use a local path, file:///path or "
                   "s3://bucket/prefix",
                   what, text, text.substr(0, pos));
  }
  loc.scheme = Scheme::kS3;
  const std::string rest = text.substr(pos + 3);
  const auto slash = rest.find('/');
  loc.bucket = rest.substr(0, slash);
  loc.path = slash == std::string::npos ? "" : trim_slashes(std::string_view(rest).substr(slash));
  if (loc.bucket.empty()) return invalid("{} '{}' names no bucket; write s3://bucket/prefix", what, text);
  if (loc.bucket.find_first_of("?#@:") != std::string::npos || loc.path.find_first_of("?#") != std::string::npos) {
    return invalid("{} '{}': query strings, credentials or ports in an s3:// URI are not supported; "
                   "give the endpoint and credentials as AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ... "
                   "(environment or storage_options)",
                   what, text);
  }
  return loc;
}

arrow::Result<StorageOptions> normalize_storage_options(const StorageOptions& options) {
  StorageOptions out;
  for (const auto& [key, value] : options) {
    std::string k = upper(key);
    if (std::find(kS3Keys.begin(), kS3Keys.end(), k) == kS3Keys.end()) {
      std::string known;
      for (auto s : kS3Keys) known += (known.empty() ? "" : ", ") + std::string(s);
      return arrow::Status::NotImplemented(fmt::format(
          "storage option '{}' is not supported (yet); the supported ones are {}", key, known));
    }
    if (k == "AWS_ENDPOINT") k = "AWS_ENDPOINT_URL";
    out[k] = value;
  }
  return out;
}

}  // namespace sluice::storage
