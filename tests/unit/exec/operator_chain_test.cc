// The batch operator interface (exec/operator.h) over real operators: project/filter keeps each
// row's source row, a chain composes its operators in order and counts rows, and stateless
// chains refuse snapshots.
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "sluice/exec/operator.h"
#include "sluice/exec/row_operators.h"
#include "sluice/exec/select_plan.h"
#include "sluice/sql/parser.h"

namespace sluice::exec {
namespace {

class OperatorChainTest : public ::testing::Test {
 protected:
  // The bound query of a streaming table over a stream with an int64 column `a`.
  SelectPlan plan(const std::string& select) {
    files_.push_back(std::make_unique<sql::SourceFile>(
        sql::SourceFile{"q.sql", "CREATE STREAMING TABLE s AS " + select + ";"}));
    const auto& file = *files_.back();
    auto statements = sql::parse_statements(file);
    EXPECT_TRUE(statements.ok()) << statements.status().message();
    statements_.push_back(std::move(*statements));
    auto made = SelectPlan::make(*statements_.back()[0].dataset->query, file,
                                 [&](const std::string&) -> arrow::Result<std::shared_ptr<arrow::Schema>> {
                                   return schema_;
                                 });
    EXPECT_TRUE(made.ok()) << made.status().message();
    return std::move(*made);
  }

  std::shared_ptr<arrow::RecordBatch> batch(const std::vector<int64_t>& values) {
    arrow::Int64Builder b;
    EXPECT_TRUE(b.AppendValues(values).ok());
    return arrow::RecordBatch::Make(schema_, static_cast<int64_t>(values.size()), {*b.Finish()});
  }

  static std::vector<int64_t> values(const arrow::Array& array) {
    const auto& a = static_cast<const arrow::Int64Array&>(array);
    return std::vector<int64_t>(a.raw_values(), a.raw_values() + a.length());
  }

  std::shared_ptr<arrow::Schema> schema_ = arrow::schema({arrow::field("a", arrow::int64())});
  std::vector<std::unique_ptr<sql::SourceFile>> files_;
  std::vector<std::vector<sql::Statement>> statements_;
};

TEST_F(OperatorChainTest, ProjectFilterKeepsTheSourceRowOfEachRow) {
  auto p = plan("SELECT a * 10 AS b FROM STREAM(t) WHERE a > 1");
  ProjectFilterOperator op(p);
  auto out = op.push(OperatorBatch::from_source(batch({1, 5, 0, 3})));
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values(*out->rows->column(0)), (std::vector<int64_t>{50, 30}));
  ASSERT_EQ(out->lineage, OperatorBatch::Lineage::kSourceRows);
  EXPECT_EQ(values(*out->source_rows), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(values(*out->source->column(0)), (std::vector<int64_t>{1, 5, 0, 3}));
}

TEST_F(OperatorChainTest, AChainRunsItsOperatorsInOrderAndComposesSourceRows) {
  auto first = plan("SELECT a FROM STREAM(t) WHERE a > 1");
  auto second = plan("SELECT a + 1 AS a FROM STREAM(t) WHERE a < 5");
  OperatorChain chain;
  chain.add(std::make_unique<ProjectFilterOperator>(first));
  chain.add(std::make_unique<ProjectFilterOperator>(second));
  // Rows 1 (5), 2 (2), 3 (4) pass the first; of those, 2 and 4 pass the second: source rows 2, 3.
  auto out = chain.push(OperatorBatch::from_source(batch({0, 5, 2, 4})));
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(values(*out->rows->column(0)), (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(values(*out->source_rows), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(chain.name(), "project/filter -> project/filter");
  EXPECT_EQ(chain.metrics().rows_in, 4);
  EXPECT_EQ(chain.metrics().rows_out, 2);
  EXPECT_EQ(chain.operators()[0]->metrics().rows_out, 3);
  EXPECT_EQ(chain.operators()[1]->metrics().rows_in, 3);
}

TEST_F(OperatorChainTest, EveryBatchIsPushedEvenWithNoRowsLeft) {
  auto p = plan("SELECT a FROM STREAM(t) WHERE a > 100");
  OperatorChain chain;
  chain.add(std::make_unique<ProjectFilterOperator>(p));
  chain.add(std::make_unique<ProjectFilterOperator>(p));
  auto rows = chain.push_rows(batch({1, 2}));
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  EXPECT_EQ((*rows)->num_rows(), 0);
  EXPECT_EQ(chain.operators()[1]->metrics().batches_in, 1);
}

TEST_F(OperatorChainTest, AStatelessChainRefusesToSnapshotNamingItsOperators) {
  auto p = plan("SELECT a FROM STREAM(t)");
  OperatorChain chain;
  chain.add(std::make_unique<ProjectFilterOperator>(p));
  EXPECT_FALSE(chain.stateful());
  auto state = chain.snapshot();
  ASSERT_TRUE(state.status().IsNotImplemented());
  EXPECT_NE(state.status().message().find("'project/filter'"), std::string::npos) << state.status().message();
  auto finished = chain.finish();
  ASSERT_TRUE(finished.ok());
  EXPECT_TRUE(finished->empty());
}

}  // namespace
}  // namespace sluice::exec
