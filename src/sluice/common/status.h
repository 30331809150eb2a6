// Error helpers over arrow::Status: formatted constructors and error classification.
#pragma once

#include <arrow/result.h>
#include <arrow/status.h>
#include <fmt/format.h>

#include <memory>
#include <string>

namespace sluice {

// Whether retrying the same work later may succeed (broker away, commit race) or not.
enum class Retryable { kNo, kYes };

// Attached to a Status to say it may succeed when retried.
class RetryableDetail : public arrow::StatusDetail {
 public:
  const char* type_id() const override { return "sluice::retryable"; }
  std::string ToString() const override { return "retryable"; }
};

bool is_retryable(const arrow::Status& status);
arrow::Status mark_retryable(arrow::Status status);

template <typename... Args>
arrow::Status invalid(fmt::format_string<Args...> f, Args&&... args) {
  return arrow::Status::Invalid(fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
arrow::Status io_error(fmt::format_string<Args...> f, Args&&... args) {
  return arrow::Status::IOError(fmt::format(f, std::forward<Args>(args)...));
}

// Adds context in front of an error's message, keeping its code and detail. Each layer that
// knows where it is may add its context: a message that already starts with the same context
// (added by a lower layer that knew it too) gets it once, not twice.
arrow::Status with_context(const arrow::Status& status, const std::string& context);
// The same for a message: "<context>: <message>" unless the message already starts so.
std::string in_context(const std::string& context, const std::string& message);

// An errno value as text with its name: "No space left on device (ENOSPC)".
std::string errno_text(int err);

// A failed file operation named by `what` ("cannot write data file") and `path`: the errno
// the status carries (Arrow's I/O errors carry one) by name, and for a full disk or quota
// what to do; statuses without an errno keep their message after the path.
arrow::Status io_failure(const arrow::Status& status, const std::string& what,
                         const std::string& path);
// The same for a failed system call that set `err`.
arrow::Status io_failure(int err, const std::string& what, const std::string& path);

}  // namespace sluice
