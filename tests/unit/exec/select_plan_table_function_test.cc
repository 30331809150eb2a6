// A table function in FROM (read_kafka) is bound by the caller: SelectPlan plans over the
// schema the binder gives, knows no source system, and refuses a table function without one.
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
  sql::SourceFile file_;
  std::vector<sql::Statement> statements_;
};

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
