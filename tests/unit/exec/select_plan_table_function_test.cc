// A table function in FROM (read_kafka) is bound by the caller: SelectPlan plans over the
// schema the binder gives, knows no source system, and refuses a table function without one;
// table_changes (a dataset's change feed) is bound by SelectPlan itself.
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "sluice/exec/select_plan.h"
#include "sluice/sql/parser.h"

namespace sluice::exec {
namespace {

class SelectPlanTableFunctionTest : public ::testing::Test {
 protected:
  arrow::Result<SelectPlan> plan(const std::string& select, const SelectPlan::TableFunctionBinder& binder) {
    file_ = sql::SourceFile{"q.sql", "CREATE STREAMING TABLE t AS " + select + ";"};
    ARROW_ASSIGN_OR_RAISE(statements_, sql::parse_statements(file_));
    auto no_datasets = [](const std::string& name) -> arrow::Result<std::shared_ptr<arrow::Schema>> {
      return arrow::Status::Invalid("no dataset ", name);
    };
    return SelectPlan::make(*statements_[0].dataset->query, file_, no_datasets, {}, binder);
  }
  // Over one dataset, orders(id BIGINT, v STRING), and no binder (table_changes needs none).
  arrow::Result<SelectPlan> plan_over_orders(const std::string& select) {
    file_ = sql::SourceFile{"q.sql", "CREATE STREAMING TABLE t AS " + select + ";"};
    ARROW_ASSIGN_OR_RAISE(statements_, sql::parse_statements(file_));
    auto orders = [](const std::string& name) -> arrow::Result<std::shared_ptr<arrow::Schema>> {
      if (name != "orders") return arrow::Status::Invalid("unknown table '", name, "'");
      return arrow::schema({arrow::field("id", arrow::int64()), arrow::field("v", arrow::utf8())});
    };
    return SelectPlan::make(*statements_[0].dataset->query, file_, orders, {}, {});
  }
  sql::SourceFile file_;
  std::vector<sql::Statement> statements_;
};

TEST_F(SelectPlanTableFunctionTest, TableChangesReadsTheDatasetsFeedWithItsColumns) {
  auto p = plan_over_orders("SELECT id, _change_type, _commit_version FROM STREAM table_changes('live.orders', 2)");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->source().kind, PlanSource::Kind::kDataset);
  EXPECT_EQ(p->source().name, "orders");
  EXPECT_TRUE(p->source().streaming);
  ASSERT_TRUE(p->source().change_feed.has_value());
  EXPECT_EQ(p->source().change_feed->starting, "2");
  EXPECT_EQ(p->source().change_feed->ending, "");
  EXPECT_EQ(p->output_schema()->ToString(), "id: int64\n_change_type: string\n_commit_version: int64");
  auto ranged = plan_over_orders("SELECT * FROM table_changes('orders', '2024-05-01', 7)");
  ASSERT_TRUE(ranged.ok()) << ranged.status().message();
  EXPECT_EQ(ranged->source().change_feed->ending, "7");
  EXPECT_EQ(ranged->output_schema()->num_fields(), 5);
}

TEST_F(SelectPlanTableFunctionTest, TableChangesRefusesWhatItCannotRead) {
  struct Case {
    std::string select, message;
  };
  for (const auto& c : std::vector<Case>{
           {"SELECT * FROM table_changes('orders')", "table_changes takes 2 or 3 arguments"},
           {"SELECT * FROM table_changes(orders, 0)", "table_changes takes literal arguments"},
           {"SELECT * FROM table_changes('orders', 0 + 1)", "table_changes takes literal arguments"},
           {"SELECT * FROM table_changes('orders', 'soon')", "is neither a version"},
           {"SELECT * FROM table_changes('nope', 0)", "unknown table 'nope'"},
       }) {
    auto p = plan_over_orders(c.select);
    ASSERT_FALSE(p.ok()) << c.select;
    EXPECT_NE(p.status().message().find(c.message), std::string::npos) << p.status().message();
    EXPECT_EQ(p.status().message().rfind("q.sql:1:", 0), 0u) << p.status().message();
  }
}

TEST_F(SelectPlanTableFunctionTest, PlansOverTheSchemaTheBinderGives) {
  std::vector<std::string> bound;
  auto binder = [&](const sql::TableRef& from, const sql::SourceFile&) -> arrow::Result<PlanSource> {
    bound.push_back(from.name.back());
    return PlanSource{PlanSource::Kind::kKafka, "events", from.stream, {{"topic", "events"}},
                      arrow::schema({arrow::field("offset", arrow::int64()), arrow::field("value", arrow::binary())}),
                      from.loc};
  };
  auto p = plan("SELECT offset + 1 AS next FROM STREAM read_kafka(topic => 'events') WHERE offset > 2", binder);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(bound, std::vector<std::string>{"read_kafka"});
  EXPECT_EQ(p->source().kind, PlanSource::Kind::kKafka);
  EXPECT_EQ(p->source().name, "events");
  EXPECT_TRUE(p->source().streaming);
  EXPECT_EQ(p->output_schema()->ToString(), "next: int64");
  EXPECT_EQ(p->lineage()[0], (std::set<std::string>{"kafka:events.offset"}));
}

TEST_F(SelectPlanTableFunctionTest, BinderErrorsAreReturnedAsTheyAre) {
  auto binder = [](const sql::TableRef& from, const sql::SourceFile& file) -> arrow::Result<PlanSource> {
    return arrow::Status::Invalid(sql::format_error(file, from.loc, "no such topic"));
  };
  auto p = plan("SELECT * FROM STREAM read_kafka(topic => 'x')", binder);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message().rfind("q.sql:1:", 0), 0u) << p.status().message();
  EXPECT_NE(p.status().message().find("error: no such topic"), std::string::npos) << p.status().message();
}

TEST_F(SelectPlanTableFunctionTest, TableFunctionWithoutBinderIsRefused) {
  auto p = plan("SELECT * FROM STREAM read_kafka(topic => 'x')", {});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("error: table function read_kafka is not supported here: read a dataset of "
                                      "the pipeline by its name"),
            std::string::npos)
      << p.status().message();
}

}  // namespace
}  // namespace sluice::exec
