// The predicate of `sluice forget` as it is recorded (pipeline/forget.h): literals redacted,
// columns found, and no error that quotes a literal.
#include <gtest/gtest.h>

#include "sluice/pipeline/forget.h"

namespace sluice::pipeline {
namespace {

TEST(ForgetPredicateTest, EveryLiteralIsRedactedAndCounted) {
  struct Case {
    const char* where;
    const char* redacted;
    int literals;
  };
  const Case cases[] = {
      {"user_id = 'u-42'", "(user_id = '***')", 1},
      {"user_id IN ('u-1', 'u-2') AND age > 40", "((user_id IN ('***', '***')) AND (age > '***'))", 3},
      {"email IS NULL OR lower(email) = 'A@B.ORG'", "((email IS NULL) OR (lower(email) = '***'))", 1},
  };
  for (const auto& c : cases) {
    auto p = describe_forget_predicate(c.where);
    ASSERT_TRUE(p.ok()) << c.where << ": " << p.status().ToString();
    EXPECT_EQ(p->redacted, c.redacted) << c.where;
    EXPECT_EQ(p->literals, c.literals) << c.where;
  }
  auto p = describe_forget_predicate("user_id IN ('u-1', 'u-2') AND age > 40");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->columns, (std::set<std::string>{"age", "user_id"}));
}

TEST(ForgetPredicateTest, ErrorsNeverQuoteALiteral) {
  for (const char* where : {"user_id = 'secret-9' AND", "t.user_id = 'secret-9'", "'secret-9' = 'secret-9'",
                            "user_id IN (SELECT 'secret-9')", "user_id = 'secret-9"}) {
    auto p = describe_forget_predicate(where);
    ASSERT_FALSE(p.ok()) << where;
    EXPECT_EQ(p.status().message().find("secret-9"), std::string::npos) << p.status().message();
    EXPECT_EQ(p.status().message().find("--where"), 0u) << p.status().message();
  }
}

}  // namespace
}  // namespace sluice::pipeline
