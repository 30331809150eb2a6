// S3 ObjectStore (s3_store.h).
#include "sluice/storage/s3_store.h"

#include <arrow/filesystem/s3fs.h>
#include <arrow/io/interfaces.h>
#include <curl/curl.h>

#include <cstdlib>
#include <ctime>
#include <mutex>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/storage/http_util.h"

namespace sluice::storage {

namespace {

// "2026-12-06T06:10:00.123Z" -> epoch nanoseconds (0 when unparsable).
int64_t iso8601_nanos(const std::string& text) {
  std::tm tm{};
  int millis = 0;
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &millis) < 6) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1'000'000'000 + int64_t{millis} * 1'000'000;
}

arrow::Status ensure_arrow_s3() {
  static arrow::Status status = arrow::fs::EnsureS3Initialized();
  return status;
}

// Arrow's S3 must be finalized before static destruction, or the AWS SDK crashes at exit. Its
// client finalizer is itself a static made by the first S3FileSystem::Make, so the exit hook is
// registered after that (exit hooks run before the destructors of statics made before them).
void finalize_arrow_s3_at_exit() {
  static const bool registered = std::atexit([] { (void)arrow::fs::EnsureS3Finalized(); }) == 0;
  (void)registered;
}

// Arrow's S3FileSystem signing with `credentials` (static to Arrow: S3Store makes another
// when the provider refreshes them).
arrow::Result<std::shared_ptr<arrow::fs::FileSystem>> make_arrow_s3(const S3Config& config,
                                                                    const AwsCredentials& credentials) {
  auto options = arrow::fs::S3Options::FromAccessKey(credentials.access_key, credentials.secret_key,
                                                     credentials.session_token);
  options.region = config.region;
  const auto scheme_end = config.endpoint.find("://");
  options.scheme = config.endpoint.substr(0, scheme_end);
  options.endpoint_override = config.endpoint.substr(scheme_end + 3);
  options.force_virtual_addressing = false;
  // No "folder" marker objects: S3 has no folders, and Delta readers do not need them.
  options.check_directory_existence_before_creation = false;
  auto fs = arrow::fs::S3FileSystem::Make(options);
  if (!fs.ok()) {
    return io_failure(fs.status(), "cannot set up S3 access to", config.endpoint);
  }
  finalize_arrow_s3_at_exit();
  return std::shared_ptr<arrow::fs::FileSystem>(std::move(*fs));
}

std::string credentials_identity(const AwsCredentials& c) { return c.access_key + '\n' + c.session_token; }

}  // namespace

arrow::Result<std::shared_ptr<S3Store>> S3Store::Make(S3Config config) {
  ARROW_RETURN_NOT_OK(ensure_arrow_s3());
  ARROW_ASSIGN_OR_RAISE(auto provider, AwsCredentialProvider::Make(config.credentials));
  ARROW_ASSIGN_OR_RAISE(auto credentials, provider->get());
  ARROW_ASSIGN_OR_RAISE(auto fs, make_arrow_s3(config, credentials));
  return std::shared_ptr<S3Store>(
      new S3Store(S3Client(std::move(config), std::move(provider)), std::move(fs), credentials_identity(credentials)));
}

arrow::Result<std::shared_ptr<arrow::fs::FileSystem>> S3Store::filesystem() const {
  ARROW_ASSIGN_OR_RAISE(auto credentials, client_.credentials().get());
  const std::string identity = credentials_identity(credentials);
  std::lock_guard lock(fs_mutex_);
  if (identity == fs_identity_) return current_fs_ ? current_fs_ : fs_;
  ARROW_ASSIGN_OR_RAISE(current_fs_, make_arrow_s3(client_.config(), credentials));
  fs_identity_ = identity;
  return current_fs_;
}

arrow::Status S3Store::failed(const char* what, const std::string& path, const S3Response& r) const {
  std::string hint;
  if (r.status == 403) {
    hint = fmt::format(" (check the credentials from {} and the bucket's policy)", client_.config().credentials.describe());
  }
  if (r.status == 404) hint = " (does the bucket exist? create it first)";
  auto st = io_error("S3 {} {}: {}{}", what, display(path), s3_error_text(r), hint);
  return r.status >= 500 || r.status == 429 ? mark_retryable(st) : st;
}

arrow::Result<std::vector<ObjectInfo>> S3Store::list(const std::string& dir,
                                                     const std::string& start_after) const {
  return list_objects(dir, start_after, ListDepth::kFolder);
}

arrow::Result<std::vector<ObjectInfo>> S3Store::list_recursive(const std::string& dir) const {
  return list_objects(dir, "", ListDepth::kRecursive);
}

arrow::Result<std::vector<ObjectInfo>> S3Store::list_objects(const std::string& dir, const std::string& start_after,
                                                             ListDepth depth) const {
  const auto [bucket, key] = split_bucket_key(dir);
  const std::string prefix = key.empty() ? "" : key + "/";
  std::vector<ObjectInfo> out;
  std::string token;
  do {
    // Parameters sorted by name: the SigV4 canonical query string.
    std::string query;
    if (!token.empty()) query += "continuation-token=" + s3_encode(token, false) + "&";
    if (depth == ListDepth::kFolder) query += "delimiter=%2F&";
    query += "list-type=2&prefix=" + s3_encode(prefix, false);
    if (!start_after.empty()) query += "&start-after=" + s3_encode(prefix + start_after, false);
    count_list();
    ARROW_ASSIGN_OR_RAISE(auto r, client_.send("GET", bucket, "", query, "", {}));
    if (r.status != 200) return failed("list", dir, r);
    size_t pos = 0;
    while ((pos = r.body.find("<Contents>", pos)) != std::string::npos) {
      const size_t end = r.body.find("</Contents>", pos);
      auto keys = xml_values(r.body, "Key", pos, end);
      auto sizes = xml_values(r.body, "Size", pos, end);
      auto times = xml_values(r.body, "LastModified", pos, end);
      pos = end == std::string::npos ? r.body.size() : end;
      if (keys.empty() || keys[0].size() <= prefix.size()) continue;
      ObjectInfo info;
      info.name = keys[0].substr(prefix.size());
      if (!sizes.empty()) {
        ARROW_ASSIGN_OR_RAISE(info.size, parse_object_size(sizes[0], "S3 list " + display(dir)));
      }
      info.mtime_nanos = times.empty() ? 0 : iso8601_nanos(times[0]);
      out.push_back(std::move(info));
    }
    auto truncated = xml_values(r.body, "IsTruncated");
    auto next = xml_values(r.body, "NextContinuationToken");
    token = !truncated.empty() && truncated[0] == "true" && !next.empty() ? next[0] : "";
  } while (!token.empty());
  return out;
}

arrow::Result<std::optional<ObjectInfo>> S3Store::head(const std::string& path) const {
  const auto [bucket, key] = split_bucket_key(path);
  count_head();
  ARROW_ASSIGN_OR_RAISE(auto r, client_.send("HEAD", bucket, key, "", "", {}));
  if (r.status == 404) return std::optional<ObjectInfo>{};
  if (r.status != 200) return failed("HEAD", path, r);
  ObjectInfo info;
  info.name = key.substr(key.rfind('/') + 1);
  ARROW_ASSIGN_OR_RAISE(info.size, parse_object_size(r.headers["content-length"], "S3 HEAD " + display(path)));
  const time_t t = curl_getdate(r.headers["last-modified"].c_str(), nullptr);
  info.mtime_nanos = t < 0 ? 0 : static_cast<int64_t>(t) * 1'000'000'000;
  return std::optional<ObjectInfo>{std::move(info)};
}

arrow::Result<std::string> S3Store::read(const std::string& path) const {
  const auto [bucket, key] = split_bucket_key(path);
  count_get();
  ARROW_ASSIGN_OR_RAISE(auto r, client_.send("GET", bucket, key, "", "", {}));
  if (r.status != 200) return failed("GET", path, r);
  return std::move(r.body);
}

arrow::Result<PutResult> S3Store::put_if_absent(const std::string& path, const std::string& content) {
  const auto [bucket, key] = split_bucket_key(path);
  // 409 ConditionalRequestConflict: another conditional write to the key is in flight; S3
  // asks to retry, after which one of them has won (412 for the loser).
  for (int attempt = 1;; ++attempt) {
    count_put();
    ARROW_ASSIGN_OR_RAISE(auto r, client_.send("PUT", bucket, key, "", content, {"If-None-Match: *"}));
    if (r.status == 200) return PutResult::kWritten;
    if (r.status == 412) return PutResult::kAlreadyExists;
    if (r.status == 409 && attempt < 5) continue;
    if (r.status == 501 || r.status == 400) {
      return arrow::Status::NotImplemented(fmt::format(
          "S3 conditional PUT (If-None-Match: *) of {} was refused ({}): this endpoint does not "
          "support conditional writes, and sluice will not commit to a Delta table without them "
          "(two writers could overwrite one version); use an S3 service that supports them (AWS "
          "S3 since 2024, MinIO, moto)",
          display(path), s3_error_text(r)));
    }
    return failed("conditional PUT", path, r);
  }
}

arrow::Status S3Store::put(const std::string& path, const std::string& content) {
  const auto [bucket, key] = split_bucket_key(path);
  count_put();
  ARROW_ASSIGN_OR_RAISE(auto r, client_.send("PUT", bucket, key, "", content, {}));
  if (r.status != 200) return failed("PUT", path, r);
  return arrow::Status::OK();
}

arrow::Status S3Store::remove(const std::string& path) {
  const auto [bucket, key] = split_bucket_key(path);
  count_remove();
  ARROW_ASSIGN_OR_RAISE(auto r, client_.send("DELETE", bucket, key, "", "", {}));
  if (r.status != 204 && r.status != 200 && r.status != 404) return failed("DELETE", path, r);
  return arrow::Status::OK();
}

}  // namespace sluice::storage
