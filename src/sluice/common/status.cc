// Error helpers over arrow::Status.
#include "sluice/common/status.h"
#include "sluice/common/text.h"

#include <arrow/util/io_util.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace sluice {

bool is_retryable(const arrow::Status& status) {
  return status.detail() && std::string(status.detail()->type_id()) == "sluice::retryable";
}

arrow::Status mark_retryable(arrow::Status status) {
  return status.WithDetail(std::make_shared<RetryableDetail>());
}

std::string in_context(const std::string& context, const std::string& message) {
  const std::string prefix = context + ": ";
  if (message.rfind(prefix, 0) == 0) return message;
  return prefix + message;
}

arrow::Status with_context(const arrow::Status& status, const std::string& context) {
  if (status.ok()) return status;
  return arrow::Status(status.code(), in_context(context, status.message()), status.detail());
}

std::string errno_text(int err) {
  const char* name = strerrorname_np(err);
  return fmt::format("{} ({})", std::strerror(err), name ? name : std::to_string(err));
}

namespace {

int errno_of(const arrow::Status& status) {
  if (int err = arrow::internal::ErrnoFromStatus(status); err > 0) return err;
  // Parquet's writer re-throws I/O errors as exceptions and may lose the detail; Arrow's
  // message still says "[errno N]".
  const std::string_view message = status.message();
  constexpr std::string_view kMark = "[errno ";
  const size_t at = message.find(kMark);
  if (at == std::string_view::npos) return 0;
  const size_t digits = at + kMark.size();
  const size_t close = message.find(']', digits);
  if (close == std::string_view::npos) return 0;
  return parse_int32(message.substr(digits, close - digits), "errno").ValueOr(0);
}

std::string what_to_do(int err) {
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return ": the disk is full (or the quota is used up); free space and run again";
    case EFBIG:
      return ": the file grew past the file-size limit (ulimit -f); raise it and run again";
    case EROFS:
      return ": the filesystem is read-only";
    case EACCES:
    case EPERM:
      return ": permission denied to this user";
    default:
      return "";
  }
}

}  // namespace

arrow::Status io_failure(const arrow::Status& status, const std::string& what,
                         const std::string& path) {
  if (status.ok()) return status;
  const int err = errno_of(status);
  if (err == 0) return with_context(status, fmt::format("{} {}", what, path));
  return arrow::Status(status.code(),
                       fmt::format("{} {}: {}{}", what, path, errno_text(err), what_to_do(err)),
                       status.detail());
}

arrow::Status io_failure(int err, const std::string& what, const std::string& path) {
  return arrow::Status::IOError(
      fmt::format("{} {}: {}{}", what, path, errno_text(err), what_to_do(err)));
}

}  // namespace sluice
