// Local-filesystem ObjectStore.
#include "sluice/storage/local_store.h"

#include <arrow/io/file.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"

namespace sluice::storage {

namespace fs = std::filesystem;

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

fs::path parent_of(const fs::path& path) {
  auto parent = path.parent_path();
  return parent.empty() ? fs::path(".") : parent;
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

arrow::Result<std::vector<ObjectInfo>> LocalStore::list(const std::string& dir,
                                                        const std::string& start_after) const {
  std::vector<ObjectInfo> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!start_after.empty() && name <= start_after) continue;
    out.push_back(ObjectInfo{std::move(name), 0, 0});
  }
  if (ec) return io_error("cannot list {}: {}", dir, ec.message());
  std::sort(out.begin(), out.end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.name < b.name; });
  return out;
}

arrow::Result<std::optional<ObjectInfo>> LocalStore::head(const std::string& path) const {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::optional<ObjectInfo>{};
    return io_failure(errno, "cannot stat", path);
  }
  ObjectInfo info{fs::path(path).filename().string(), static_cast<int64_t>(st.st_size),
                  static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  return std::optional<ObjectInfo>{std::move(info)};
}

arrow::Result<std::string> LocalStore::read(const std::string& path) const {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_failure(errno, "cannot read", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return io_failure(errno, "cannot read", path);
  return ss.str();
}

arrow::Result<std::shared_ptr<arrow::io::RandomAccessFile>> LocalStore::open_input(
    const std::string& path) const {
  ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open(path));
  return std::shared_ptr<arrow::io::RandomAccessFile>(std::move(file));
}

arrow::Result<std::shared_ptr<arrow::io::OutputStream>> LocalStore::open_output(const std::string& path) {
  std::error_code ec;
  const fs::path parent = parent_of(path);
  fs::create_directories(parent, ec);
  if (ec) return io_error("cannot create {}: {}", parent.string(), ec.message());
  ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::FileOutputStream::Open(path));
  return std::shared_ptr<arrow::io::OutputStream>(std::move(file));
}

arrow::Status LocalStore::finish_output(const std::string& path, arrow::io::OutputStream& out) {
  if (!out.closed()) ARROW_RETURN_NOT_OK(out.Close());
  ARROW_RETURN_NOT_OK(fsync_file(path));
  return fsync_directory(parent_of(path));
}

namespace {

// `content` written durably to a new temporary file beside `target` (its folder made first),
// to be renamed into place.
arrow::Result<fs::path> durable_temp_beside(const fs::path& target, const std::string& content) {
  const fs::path dir = parent_of(target);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return io_error("cannot create {}: {}", dir.string(), ec.message());
  fs::path tmp = dir / fmt::format(".{}.{}.tmp", target.filename().string(), random_uuid());
  ARROW_RETURN_NOT_OK(write_file_durably(tmp, content));
  return tmp;
}

}  // namespace

arrow::Result<PutResult> LocalStore::put_if_absent(const std::string& path, const std::string& content) {
  const fs::path target(path);
  const fs::path dir = parent_of(target);
  ARROW_ASSIGN_OR_RAISE(const fs::path tmp, durable_temp_beside(target, content));

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
    return io_failure(saved, "cannot publish", target.string());
  }
  ARROW_RETURN_NOT_OK(fsync_directory(dir));
  return PutResult::kWritten;
}

arrow::Status LocalStore::put(const std::string& path, const std::string& content) {
  const fs::path target(path);
  const fs::path dir = parent_of(target);
  ARROW_ASSIGN_OR_RAISE(const fs::path tmp, durable_temp_beside(target, content));
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    return io_failure(saved, "cannot update", target.string());
  }
  return fsync_directory(dir);
}

arrow::Status LocalStore::remove(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) return io_error("cannot remove {}: {}", path, ec.message());
  return arrow::Status::OK();
}

}  // namespace sluice::storage
