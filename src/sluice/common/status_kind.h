// A kind of error named on an arrow::Status (a StatusDetail holding only a name), for callers
// that act on that kind: e.g. "sluice::delta::missing_commit" (delta/log_segment.h).
#pragma once

#include <arrow/status.h>

#include <memory>
#include <string>
#include <string_view>

namespace sluice {

class KindDetail : public arrow::StatusDetail {
 public:
  explicit KindDetail(const char* kind) : kind_(kind) {}  // `kind`: a string literal
  const char* type_id() const override { return kind_; }
  std::string ToString() const override { return kind_; }

 private:
  const char* kind_;
};

// `status` with its kind named (its code and message kept).
inline arrow::Status mark_kind(const arrow::Status& status, const char* kind) {
  return status.WithDetail(std::make_shared<KindDetail>(kind));
}

inline bool is_kind(const arrow::Status& status, std::string_view kind) {
  return status.detail() != nullptr && status.detail()->type_id() == kind;
}

}  // namespace sluice
