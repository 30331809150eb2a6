// Local-filesystem _delta_log store.
#include "sluice/delta/log_store.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"

namespace sluice::delta {

namespace fs = std::filesystem;

namespace {

// Parses "%020d.json" into a version; nullopt for any other name.
std::optional<DeltaVersion> commit_version_of(const std::string& name) {
  if (name.size() != 25 || name.compare(20, 5, ".json") != 0) return std::nullopt;
  int64_t v = 0;
  for (int i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    v = v * 10 + (name[i] - '0');
  }
  return DeltaVersion(v);
}

}  // namespace

LogStore::LogStore(fs::path table_root) : root_(std::move(table_root)) {}

fs::path LogStore::commit_path(DeltaVersion v) const {
  return log_dir() / fmt::format("{:020d}.json", v.value());
}

arrow::Result<std::vector<DeltaVersion>> LogStore::list_commits() const {
  std::vector<DeltaVersion> out;
  std::error_code ec;
  if (!fs::exists(log_dir(), ec)) return out;
  for (fs::directory_iterator it(log_dir(), ec), end; !ec && it != end; it.increment(ec)) {
    if (auto v = commit_version_of(it->path().filename().string())) out.push_back(*v);
  }
  if (ec) return io_error("cannot list {}: {}", log_dir().string(), ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

arrow::Result<std::optional<DeltaVersion>> LogStore::latest_version() const {
  ARROW_ASSIGN_OR_RAISE(auto versions, list_commits());
  if (versions.empty()) return std::optional<DeltaVersion>{};
  return std::optional<DeltaVersion>{versions.back()};
}

arrow::Result<std::string> LogStore::read_commit(DeltaVersion v) const {
  auto path = commit_path(v);
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_failure(errno, "cannot read Delta commit", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

arrow::Result<int64_t> LogStore::commit_timestamp(DeltaVersion v) const {
  struct stat st;
  auto path = commit_path(v);
  if (::stat(path.c_str(), &st) != 0) {
    return io_failure(errno, "cannot stat Delta commit", path.string());
  }
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

namespace {

// Opens `path` with `flags` (O_DIRECTORY for a folder) and fsyncs it; `what` names it in errors.
arrow::Status fsync_path(const fs::path& path, int flags, const char* what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | flags);
  if (fd < 0) return io_failure(errno, fmt::format("cannot open {} to fsync", what), path.string());
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0) return io_failure(saved, fmt::format("cannot fsync {}", what), path.string());
  return arrow::Status::OK();
}

}  // namespace

arrow::Status fsync_file(const fs::path& path) { return fsync_path(path, 0, "file"); }

arrow::Status fsync_directory(const fs::path& dir) { return fsync_path(dir, O_DIRECTORY, "directory"); }

arrow::Status write_file_durably(const fs::path& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return io_failure(errno, "cannot create", path.string());
  size_t written = 0;
  while (written < content.size()) {
    ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return io_failure(saved, "cannot write", path.string());
    }
    written += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  int saved = errno;
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed) {
    if (synced) saved = errno;
    ::unlink(path.c_str());
    return io_failure(saved, "cannot flush", path.string());
  }
  return arrow::Status::OK();
}

arrow::Result<PutResult> LogStore::put_commit_if_absent(DeltaVersion v,
                                                        const std::string& content) const {
  std::error_code ec;
  fs::create_directories(log_dir(), ec);
  if (ec) return io_error("cannot create {}: {}", log_dir().string(), ec.message());
  const fs::path target = commit_path(v);
  const fs::path tmp = log_dir() / fmt::format(".{:020d}.json.{}.tmp", v.value(), random_uuid());
  ARROW_RETURN_NOT_OK(write_file_durably(tmp, content));

  int rc = ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE);
  if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) {
    // Filesystem without RENAME_NOREPLACE: link() also refuses to replace.
    rc = ::link(tmp.c_str(), target.c_str());
    int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
  }
  if (rc != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    if (saved == EEXIST) return PutResult::kAlreadyExists;
    return io_failure(saved, "cannot publish Delta commit", target.string());
  }
  ARROW_RETURN_NOT_OK(fsync_directory(log_dir()));
  return PutResult::kWritten;
}

}  // namespace sluice::delta
