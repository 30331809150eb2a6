// How each output column of a plan derives from its source columns (SelectPlan::
// column_derivations): the rules column tags follow (docs/decisions.md "Catalog").
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "sluice/exec/select_plan.h"
#include "sluice/sql/parser.h"

namespace sluice::exec {
namespace {

using D = SelectPlan::Derivation;

// Output column name -> (source column -> derivation) of `select` over t(email STRING, n BIGINT).
std::map<std::string, std::map<std::string, D>> derivations(const std::string& select) {
  sql::SourceFile file{"q.sql", "CREATE MATERIALIZED VIEW m AS " + select + ";"};
  auto statements = sql::parse_statements(file);
  EXPECT_TRUE(statements.ok()) << statements.status().message();
  auto schema = arrow::schema({arrow::field("email", arrow::utf8()), arrow::field("n", arrow::int64())});
  auto plan = SelectPlan::make(*(*statements)[0].dataset->query, file,
                               [&](const std::string&) -> arrow::Result<std::shared_ptr<arrow::Schema>> { return schema; });
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  std::map<std::string, std::map<std::string, D>> out;
  auto d = plan->column_derivations();
  for (int i = 0; i < plan->output_schema()->num_fields(); ++i) out[plan->output_schema()->field(i)->name()] = d[i];
  return out;
}

TEST(ColumnDerivationsTest, BareReferencesAreDirectThroughRenamesAndSubqueries) {
  auto d = derivations("SELECT e AS contact FROM (SELECT email AS e FROM t)");
  EXPECT_EQ(d["contact"], (std::map<std::string, D>{{"t.email", D::kDirect}}));
}

TEST(ColumnDerivationsTest, ExpressionsAreDerivedAndDigestsRemoveTheValue) {
  auto d = derivations("SELECT upper(email) AS u, sha2(email, 256) AS h, md5(email) AS m, "
                       "concat(sha2(email, 256), CAST(n AS STRING)) AS mixed FROM t");
  EXPECT_EQ(d["u"], (std::map<std::string, D>{{"t.email", D::kDerived}}));
  EXPECT_EQ(d["h"], (std::map<std::string, D>{{"t.email", D::kRemoved}}));
  EXPECT_EQ(d["m"], (std::map<std::string, D>{{"t.email", D::kRemoved}}));
  EXPECT_EQ(d["mixed"], (std::map<std::string, D>{{"t.email", D::kRemoved}, {"t.n", D::kDerived}}));
}

TEST(ColumnDerivationsTest, CountsRemoveAndOtherAggregatesDerive) {
  auto d = derivations("SELECT n, count(email) AS c, count(DISTINCT email) AS cd, max(email) AS last, count(*) AS rows "
                       "FROM t GROUP BY n");
  EXPECT_EQ(d["n"], (std::map<std::string, D>{{"t.n", D::kDirect}}));
  EXPECT_EQ(d["c"], (std::map<std::string, D>{{"t.email", D::kRemoved}}));
  EXPECT_EQ(d["cd"], (std::map<std::string, D>{{"t.email", D::kRemoved}}));
  EXPECT_EQ(d["last"], (std::map<std::string, D>{{"t.email", D::kDerived}}));
  EXPECT_TRUE(d["rows"].empty());
}

TEST(ColumnDerivationsTest, TheMostInformativePathWins) {
  auto d = derivations("SELECT coalesce(email, sha2(email, 256)) AS e FROM t");
  EXPECT_EQ(d["e"], (std::map<std::string, D>{{"t.email", D::kDerived}}));
}

}  // namespace
}  // namespace sluice::exec
