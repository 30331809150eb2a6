// Error context: each context is said once, however many layers add it.
#include "sluice/common/status.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(WithContext, AddsContextInFront) {
  auto st = with_context(arrow::Status::Invalid("boom"), "pipeline 'p', table 'b'");
  EXPECT_EQ(st.message(), "pipeline 'p', table 'b': boom");
  EXPECT_TRUE(st.IsInvalid());
}

TEST(WithContext, SameContextFromTwoLayersIsSaidOnce) {
  auto inner = with_context(mark_retryable(arrow::Status::IOError("away")), "pipeline 'p', table 'b'");
  auto outer = with_context(inner, "pipeline 'p', table 'b'");
  EXPECT_EQ(outer.message(), "pipeline 'p', table 'b': away");
  EXPECT_TRUE(is_retryable(outer));
}

TEST(WithContext, DifferentContextsStack) {
  auto st = with_context(with_context(arrow::Status::Invalid("x"), "table 'b'"), "pipeline 'p'");
  EXPECT_EQ(st.message(), "pipeline 'p': table 'b': x");
}

}  // namespace
}  // namespace sluice
