// Error helpers over arrow::Status.
#include "sluice/common/status.h"

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

}  // namespace sluice
