// A streaming-table flow's operator chain as plan_flow_operators assembles it from the bound
// query: rows keep their source position through filters, so FAIL UPDATE names the Kafka
// record or the upstream commit a failing row came from.
#include "sluice/pipeline/flow_operators.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "sluice/pipeline/graph.h"

namespace sluice::pipeline {
namespace {

constexpr const char* kSql =
    "CREATE STREAMING TABLE t AS SELECT * FROM STREAM read_kafka(topic => 'x');\n"
    "CREATE STREAMING TABLE s (CONSTRAINT positive EXPECT (a > 0) ON VIOLATION FAIL UPDATE)\n"
    "AS SELECT a FROM STREAM(t) WHERE a <> 5;\n";

class FlowOperatorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto graph = build_graph({{"p.sql", kSql}});
    ASSERT_TRUE(graph.ok()) << graph.status().message();
    graph_ = std::move(*graph);
    const auto& flow = graph_.flows.at("s");
    auto plan = exec::SelectPlan::make(*flow.query, graph_.files[flow.file],
                                       [&](const std::string&) -> arrow::Result<std::shared_ptr<arrow::Schema>> {
                                         return source_schema_;
                                       });
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    plan_ = std::make_unique<exec::SelectPlan>(std::move(*plan));
    auto ex = Expectations::make(graph_, graph_.datasets.at("s"), table_schema_);
    ASSERT_TRUE(ex.ok()) << ex.status().message();
    expectations_ = std::make_unique<Expectations>(std::move(*ex));
  }

  arrow::Result<std::unique_ptr<exec::OperatorChain>> chain(const SourcePositions& positions) {
    FlowOperatorsSpec spec;
    spec.plan = plan_.get();
    spec.expectations = expectations_.get();
    spec.schema = table_schema_;
    spec.report = &report_;
    spec.positions = &positions;
    return plan_flow_operators(std::move(spec));
  }

  // Kafka-shaped source rows: a, topic, partition, offset.
  std::shared_ptr<arrow::RecordBatch> source(const std::vector<int64_t>& a, const std::vector<int64_t>& offsets) {
    arrow::Int64Builder ab, ob;
    arrow::StringBuilder tb;
    arrow::Int32Builder pb;
    EXPECT_TRUE(ab.AppendValues(a).ok());
    EXPECT_TRUE(ob.AppendValues(offsets).ok());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(tb.Append("x").ok());
      EXPECT_TRUE(pb.Append(2).ok());
    }
    return arrow::RecordBatch::Make(source_schema_, static_cast<int64_t>(a.size()),
                                    {*ab.Finish(), *tb.Finish(), *pb.Finish(), *ob.Finish()});
  }

  std::shared_ptr<arrow::Schema> source_schema_ =
      arrow::schema({arrow::field("a", arrow::int64()), arrow::field("topic", arrow::utf8()),
                     arrow::field("partition", arrow::int32()), arrow::field("offset", arrow::int64())});
  std::shared_ptr<arrow::Schema> table_schema_ = arrow::schema({arrow::field("a", arrow::int64())});
  Graph graph_;
  std::unique_ptr<exec::SelectPlan> plan_;
  std::unique_ptr<Expectations> expectations_;
  DatasetReport report_;
};

TEST_F(FlowOperatorsTest, TheChainIsTheQueryThenTheTableSchemaThenExpectations) {
  const ProgressIds ids(PipelineId(), "s");
  KafkaPositions positions(ids);
  auto ops = chain(positions);
  ASSERT_TRUE(ops.ok()) << ops.status().message();
  EXPECT_EQ((*ops)->name(), "project/filter -> conform -> expectations");
  auto rows = (*ops)->push_rows(source({1, 5, 3}, {10, 11, 12}));
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  ASSERT_TRUE((*rows)->schema()->Equals(*table_schema_)) << (*rows)->schema()->ToString();
  const auto& a = static_cast<const arrow::Int64Array&>(*(*rows)->column(0));
  EXPECT_EQ(std::vector<int64_t>(a.raw_values(), a.raw_values() + a.length()), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(report_.expectation_rows["positive"], 2);
}

TEST_F(FlowOperatorsTest, FailUpdateNamesTheKafkaRecordPastTheFilter) {
  const ProgressIds ids(PipelineId(), "s");
  KafkaPositions positions(ids);
  auto ops = chain(positions);
  ASSERT_TRUE(ops.ok()) << ops.status().message();
  // Row 1 (a = 5) is filtered out; the failing row -4 is source row 2, offset 42.
  auto rows = (*ops)->push_rows(source({1, 5, -4}, {40, 41, 42}));
  ASSERT_FALSE(rows.ok());
  EXPECT_NE(rows.status().message().find("It came from Kafka topic 'x' partition 2 offset 42."), std::string::npos)
      << rows.status().message();
}

TEST_F(FlowOperatorsTest, FailUpdateNamesTheUpstreamCommitOfADeltaRow) {
  DeltaPositions positions("t", "pipeline/s/table-id");
  auto ops = chain(positions);
  ASSERT_TRUE(ops.ok()) << ops.status().message();
  auto rows = (*ops)->push_rows(source({-1}, {0}), /*source_version=*/7);
  ASSERT_FALSE(rows.ok());
  EXPECT_NE(rows.status().message().find("It came from table 't' (the commit of version 7)."), std::string::npos)
      << rows.status().message();
}

}  // namespace
}  // namespace sluice::pipeline
