// GCS ObjectStore (gcs_store.h).
#include "sluice/storage/gcs_store.h"

#include <arrow/filesystem/gcsfs.h>
#include <arrow/io/interfaces.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>

#include "sluice/common/json_fields.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/storage/http_util.h"

namespace sluice::storage {

namespace {

std::string object_target(const std::string& bucket, const std::string& key) {
  return "/storage/v1/b/" + gcs_encode(bucket) + "/o/" + gcs_encode(key);
}

// An object resource of the JSON API ({"name", "size": "123", "updated": RFC 3339}); `what`
// names the request for an error.
arrow::Result<ObjectInfo> info_of(const nlohmann::json& o, size_t prefix_size, const std::string& what) {
  ObjectInfo info;
  const std::string name = field_or(o, "name", "");  // json::value would throw on {"name": 5}
  info.name = name.size() > prefix_size ? name.substr(prefix_size) : name;
  const auto size = o.find("size");
  if (size != o.end() && size->is_string()) {
    ARROW_ASSIGN_OR_RAISE(info.size, parse_object_size(size->get_ref<const std::string&>(), what + " (" + name + ")"));
  } else if (size != o.end() && size->is_number_unsigned()) {
    info.size = static_cast<int64_t>(std::min<uint64_t>(size->get<uint64_t>(), INT64_MAX));
  } else if (size != o.end() && !size->is_null()) {
    return io_error("{} answered a size that is not a whole number of bytes for {}", what, name);
  }
  info.mtime_nanos = rfc3339_nanos(field_or(o, "updated", ""));
  return info;
}

// Arrow's GcsFileSystem sending `token` (anonymous when it is empty: an emulator).
arrow::Result<std::shared_ptr<arrow::fs::FileSystem>> make_arrow_gcs(const GcsConfig& config, const GcsToken& token) {
  // Arrow's retry policy would retry a refused or unreachable endpoint for 15 minutes.
  constexpr double kRetryLimitSeconds = 60;
  // The expiry only tells the client when the token stops working; it never refreshes it (a
  // refreshed service-account token gets a filesystem of its own, GcsStore::filesystem).
  const auto expiry = token.expires_unix != 0 ? std::chrono::system_clock::from_time_t(token.expires_unix)
                                              : std::chrono::system_clock::now() + std::chrono::hours(1);
  arrow::fs::GcsOptions options = token.access_token.empty()
                                      ? arrow::fs::GcsOptions::Anonymous()
                                      : arrow::fs::GcsOptions::FromAccessToken(token.access_token, expiry);
  if (config.emulator) {
    const auto scheme_end = config.endpoint.find("://");
    options.scheme = config.endpoint.substr(0, scheme_end);
    options.endpoint_override = config.endpoint.substr(scheme_end + 3);
  }
  options.retry_limit_seconds = kRetryLimitSeconds;
  auto fs = arrow::fs::GcsFileSystem::Make(options);
  if (!fs.ok()) return io_failure(fs.status(), "cannot set up GCS access to", config.endpoint);
  return std::shared_ptr<arrow::fs::FileSystem>(std::move(*fs));
}

}  // namespace

arrow::Result<std::shared_ptr<GcsStore>> GcsStore::Make(GcsConfig config) {
  std::shared_ptr<GcsTokenProvider> tokens;
  if (config.service_account) {
    ARROW_ASSIGN_OR_RAISE(tokens, GcsTokenProvider::Make(*config.service_account));
  }
  GcsClient client(std::move(config), std::move(tokens));
  ARROW_ASSIGN_OR_RAISE(auto token, client.token());
  ARROW_ASSIGN_OR_RAISE(auto fs, make_arrow_gcs(client.config(), token));
  return std::shared_ptr<GcsStore>(new GcsStore(std::move(client), std::move(fs), token.access_token));
}

arrow::Result<std::shared_ptr<arrow::fs::FileSystem>> GcsStore::filesystem() const {
  ARROW_ASSIGN_OR_RAISE(auto token, client_.token());
  std::lock_guard lock(fs_mutex_);
  if (token.access_token == fs_token_) return current_fs_ ? current_fs_ : fs_;
  ARROW_ASSIGN_OR_RAISE(current_fs_, make_arrow_gcs(client_.config(), token));
  fs_token_ = token.access_token;
  return current_fs_;
}

arrow::Status GcsStore::failed(const char* what, const std::string& path, const GcsResponse& r) const {
  std::string hint;
  if (r.status == 401 || r.status == 403) {
    hint = client_.config().service_account
               ? fmt::format(" (check the roles of the service account of {} on the bucket)",
                             client_.config().service_account->source)
               : " (check GOOGLE_OAUTH_ACCESS_TOKEN: it expires after an hour; and the bucket's permissions)";
  }
  if (r.status == 404) hint = " (does the bucket exist? create it first)";
  auto st = io_error("GCS {} {}: {}{}", what, display(path), gcs_error_text(r), hint);
  return r.status >= 500 || r.status == 429 ? mark_retryable(st) : st;
}

arrow::Result<std::vector<ObjectInfo>> GcsStore::list(const std::string& dir,
                                                      const std::string& start_after) const {
  return list_objects(dir, start_after, ListDepth::kFolder);
}

arrow::Result<std::vector<ObjectInfo>> GcsStore::list_recursive(const std::string& dir) const {
  return list_objects(dir, "", ListDepth::kRecursive);
}

arrow::Result<std::vector<ObjectInfo>> GcsStore::list_objects(const std::string& dir, const std::string& start_after,
                                                              ListDepth depth) const {
  const auto [bucket, key] = split_bucket_key(dir);
  const std::string prefix = key.empty() ? "" : key + "/";
  std::vector<ObjectInfo> out;
  std::string token;
  do {
    std::string query = std::string(depth == ListDepth::kFolder ? "?delimiter=%2F&" : "?") +
                        "prefix=" + gcs_encode(prefix) + "&fields=items(name%2Csize%2Cupdated)%2CnextPageToken";
    // startOffset is inclusive (S3's start-after is not): the name itself is dropped below.
    if (!start_after.empty()) query += "&startOffset=" + gcs_encode(prefix + start_after);
    if (!token.empty()) query += "&pageToken=" + gcs_encode(token);
    count_list();
    ARROW_ASSIGN_OR_RAISE(auto r, client_.send("GET", "/storage/v1/b/" + gcs_encode(bucket) + "/o" + query, "",
                                               {}, display(dir)));
    if (r.status != 200) return failed("list", dir, r);
    auto json = nlohmann::json::parse(r.body, nullptr, false);
    if (!json.is_object()) return io_error("GCS list {}: the answer is not JSON", display(dir));
    if (json.contains("items") && json["items"].is_array()) {
      for (const auto& o : json["items"]) {
        if (!o.is_object()) continue;
        ARROW_ASSIGN_OR_RAISE(ObjectInfo info, info_of(o, prefix.size(), "GCS list " + display(dir)));
        if (info.name.empty()) continue;
        if (depth == ListDepth::kFolder && info.name.find('/') != std::string::npos) continue;
        if (!start_after.empty() && info.name <= start_after) continue;
        out.push_back(std::move(info));
      }
    }
    token = field_or(json, "nextPageToken", "");
  } while (!token.empty());
  return out;
}

arrow::Result<std::optional<ObjectInfo>> GcsStore::head(const std::string& path) const {
  const auto [bucket, key] = split_bucket_key(path);
  count_head();
  ARROW_ASSIGN_OR_RAISE(auto r, client_.send("GET", object_target(bucket, key) + "?fields=name%2Csize%2Cupdated",
                                             "", {}, display(path)));
  if (r.status == 404) return std::optional<ObjectInfo>{};
  if (r.status != 200) return failed("metadata GET", path, r);
  auto json = nlohmann::json::parse(r.body, nullptr, false);
  if (!json.is_object()) return io_error("GCS metadata GET {}: the answer is not JSON", display(path));
  ARROW_ASSIGN_OR_RAISE(auto info, info_of(json, key.rfind('/') + 1, "GCS metadata GET " + display(path)));
  return std::optional<ObjectInfo>{std::move(info)};
}

arrow::Result<std::string> GcsStore::read(const std::string& path) const {
  const auto [bucket, key] = split_bucket_key(path);
  count_get();
  ARROW_ASSIGN_OR_RAISE(auto r, client_.send("GET", object_target(bucket, key) + "?alt=media", "", {}, display(path)));
  if (r.status != 200) return failed("GET", path, r);
  return std::move(r.body);
}

arrow::Result<GcsResponse> GcsStore::upload(const std::string& path, const std::string& content,
                                            const std::string& precondition) {
  const auto [bucket, key] = split_bucket_key(path);
  auto [body, boundary] = gcs_multipart_body(key, content);
  count_put();
  return client_.send("POST", "/upload/storage/v1/b/" + gcs_encode(bucket) + "/o?uploadType=multipart" + precondition,
                      body, {"Content-Type: multipart/related; boundary=" + boundary}, display(path));
}

arrow::Result<PutResult> GcsStore::put_if_absent(const std::string& path, const std::string& content) {
  ARROW_ASSIGN_OR_RAISE(auto r, upload(path, content, "&ifGenerationMatch=0"));
  if (r.status == 200) return PutResult::kWritten;
  if (r.status == 412) return PutResult::kAlreadyExists;
  return failed("upload (ifGenerationMatch=0)", path, r);
}

arrow::Status GcsStore::put(const std::string& path, const std::string& content) {
  ARROW_ASSIGN_OR_RAISE(auto r, upload(path, content, ""));
  if (r.status != 200) return failed("upload", path, r);
  return arrow::Status::OK();
}

arrow::Status GcsStore::remove(const std::string& path) {
  const auto [bucket, key] = split_bucket_key(path);
  count_remove();
  ARROW_ASSIGN_OR_RAISE(auto r, client_.send("DELETE", object_target(bucket, key), "", {}, display(path)));
  if (r.status != 204 && r.status != 200 && r.status != 404) return failed("DELETE", path, r);
  return arrow::Status::OK();
}

}  // namespace sluice::storage
