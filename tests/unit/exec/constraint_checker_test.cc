// Writes into tables with CHECK constraints, NOT NULL columns, append-only and writer
// features: what is enforced, the messages (Spark's shapes), and that a refused write leaves
// the table as it was.
#include "sluice/exec/constraint_checker.h"

#include <arrow/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>

#include "../temp_dir.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"

namespace sluice::exec {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<arrow::RecordBatch> batch(const std::shared_ptr<arrow::Schema>& schema,
                                          const std::string& rows_json) {
  auto array = arrow::json::ArrayFromJSONString(arrow::struct_(schema->fields()), rows_json).ValueOrDie();
  return arrow::RecordBatch::FromStructArray(array).ValueOrDie();
}

class ConstrainedWriteTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  std::shared_ptr<delta::LogStore> store_ = std::make_shared<delta::LogStore>(dir_.path() / "t");
  std::shared_ptr<arrow::Schema> schema_ = arrow::schema(
      {arrow::field("id", arrow::int64()), arrow::field("name", arrow::utf8())});

  // Creates the table with `configuration` and one row (id 1).
  void create(std::map<std::string, std::string> configuration, delta::Protocol protocol = {}) {
    delta::Transaction txn(store_, nullptr);
    txn.set_protocol(protocol);
    auto metadata = *delta::new_table_metadata(*schema_, "t", std::nullopt);
    metadata.configuration = std::move(configuration);
    txn.set_metadata(metadata);
    ASSERT_TRUE(txn.commit({}).ok());
    ASSERT_TRUE(write(R"([{"id":1,"name":"a"}])").ok());
  }

  arrow::Status write(const std::string& rows, delta::WriteMode mode = delta::WriteMode::kAppend,
                      bool with_constraints = true) {
    ARROW_ASSIGN_OR_RAISE(auto snap, delta::load_latest_if_exists(*store_));
    delta::WriteOptions options;
    options.mode = mode;
    if (with_constraints) options.constraints = sql_constraint_compiler();
    auto data = batch(schema_, rows);
    ARROW_ASSIGN_OR_RAISE(auto writer, delta::TableWriter::make(store_, snap, *data->schema(), options));
    ARROW_RETURN_NOT_OK(writer->write(*data));
    ARROW_ASSIGN_OR_RAISE(auto txn, writer->finish());
    return txn.commit({}).status();
  }

  int64_t version() { return (*delta::Snapshot::load(*store_))->version().value(); }
  size_t parquet_files() {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(store_->table_root())) {
      n += e.path().extension() == ".parquet";
    }
    return n;
  }
};

TEST_F(ConstrainedWriteTest, RowsSatisfyingEveryConstraintAreWritten) {
  create({{"delta.constraints.id_positive", "id > 0"},
          {"delta.constraints.name_short", "length(name) < 5 OR name IS NULL"}});
  EXPECT_TRUE(write(R"([{"id":2,"name":"b"},{"id":3,"name":null}])").ok());
  EXPECT_EQ(version(), 2);
}

TEST_F(ConstrainedWriteTest, ViolationNamesConstraintExpressionAndValuesAndWritesNothing) {
  create({{"delta.constraints.id_positive", "id > 0"}});
  const size_t files = parquet_files();
  auto st = write(R"([{"id":5,"name":"ok"},{"id":-7,"name":"bad"},{"id":-8,"name":"worse"}])");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().substr(0, st.message().find("\n", st.message().find("\n") + 1)),
            "writing to " + store_->table_root().string() +
                ": CHECK constraint id_positive (id > 0) violated by row with values:\n - id : -7");
  EXPECT_NE(st.message().find("2 of 3 row(s) in this write violate it (a NULL result violates it "
                              "too); nothing was written"),
            std::string::npos)
      << st.message();
  EXPECT_EQ(version(), 1);
  EXPECT_EQ(parquet_files(), files);
}

TEST_F(ConstrainedWriteTest, NullResultViolatesAsInDelta) {
  create({{"delta.constraints.id_positive", "id > 0"}});
  auto st = write(R"([{"id":null,"name":"x"}])");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("violated by row with values:\n - id : null"), std::string::npos)
      << st.message();
}

TEST_F(ConstrainedWriteTest, ConstraintSluiceCannotBindIsRefusedByName) {
  create({});
  // Added after the table exists, as ALTER TABLE ADD CONSTRAINT does.
  delta::Transaction alter(store_, *delta::Snapshot::load(*store_));
  auto metadata = (*delta::Snapshot::load(*store_))->metadata();
  metadata.configuration["delta.constraints.bad"] = "no_such_column > 1";
  alter.set_metadata(metadata);
  ASSERT_TRUE(alter.commit({}).ok());
  auto st = write(R"([{"id":2,"name":"b"}])");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("has CHECK constraint bad (no_such_column > 1) that sluice cannot "
                              "evaluate, so it writes nothing to the table: delta.constraints.bad:1:1"),
            std::string::npos)
      << st.message();
}

TEST_F(ConstrainedWriteTest, WriterWithoutAConstraintCompilerIsRefused) {
  create({{"delta.constraints.id_positive", "id > 0"}});
  auto st = write(R"([{"id":2,"name":"b"}])", delta::WriteMode::kAppend, /*with_constraints=*/false);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("has CHECK constraint(s) id_positive that this writer cannot evaluate"),
            std::string::npos)
      << st.message();
}

TEST_F(ConstrainedWriteTest, NestedNotNullFieldIsEnforcedWhereTheStructIsPresent) {
  schema_ = arrow::schema({arrow::field(
      "s", arrow::struct_({arrow::field("a", arrow::int64(), /*nullable=*/false),
                           arrow::field("b", arrow::int64())}))});
  delta::Transaction txn(store_, nullptr);
  txn.set_protocol({});
  txn.set_metadata(*delta::new_table_metadata(*schema_, "t", std::nullopt));
  ASSERT_TRUE(txn.commit({}).ok());
  EXPECT_TRUE(write(R"([{"s":{"a":1,"b":null}},{"s":null}])").ok());
  auto st = write(R"([{"s":{"a":1,"b":2}},{"s":{"a":null,"b":2}}])");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("NOT NULL constraint violated for column: s.a. 1 of 2 row(s)"),
            std::string::npos)
      << st.message();
}

TEST_F(ConstrainedWriteTest, AppendOnlyTableRefusesOverwriteButTakesAppends) {
  create({{"delta.appendOnly", "true"}});
  EXPECT_TRUE(write(R"([{"id":2,"name":"b"}])").ok());
  auto st = write(R"([{"id":3,"name":"c"}])", delta::WriteMode::kOverwrite);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("only allows appends (delta.appendOnly = true)"), std::string::npos)
      << st.message();
  EXPECT_EQ(version(), 2);
}

// Protocol and metadata changes as another engine commits them (sluice itself refuses to).
void commit_directly(const delta::LogStore& store, int64_t v, std::vector<delta::Action> actions) {
  ASSERT_EQ(*store.put_commit_if_absent(DeltaVersion(v), delta::serialize_commit(actions)),
            delta::PutResult::kWritten);
}

TEST_F(ConstrainedWriteTest, UnsupportedWriterFeatureIsRefusedByName) {
  create({});
  commit_directly(*store_, 2,
                  {delta::Protocol{1, 7, std::nullopt,
                                   std::vector<std::string>{"appendOnly", "invariants",
                                                            "rowTracking", "domainMetadata"}}});
  auto st = write(R"([{"id":2,"name":"b"}])");
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.IsNotImplemented());
  // domainMetadata is one sluice honours (every domain is kept; delta/clustering.h), so only
  // rowTracking is named.
  EXPECT_NE(st.message().find("requires Delta writer table feature(s) that sluice does not "
                              "implement: rowTracking;"),
            std::string::npos)
      << st.message();
  EXPECT_EQ(version(), 2);
  EXPECT_TRUE(delta::Snapshot::load(*store_).ok());  // reading it is fine
}

TEST_F(ConstrainedWriteTest, LegacyWriterVersionRefusedOnlyWhenAGeneratedColumnIsUsed) {
  create({});
  auto metadata = (*delta::Snapshot::load(*store_))->metadata();
  commit_directly(*store_, 2, {delta::Protocol{1, 4, std::nullopt, std::nullopt}});
  EXPECT_TRUE(write(R"([{"id":2,"name":"b"}])").ok());  // version 4 allows, nothing uses
  metadata.schema_string =
      R"j({"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}},)j"
      R"j({"name":"name","type":"string","nullable":true,"metadata":{"delta.generationExpression":"upper(cast(id as string))"}}]})j";
  commit_directly(*store_, 4, {metadata});
  auto st = write(R"([{"id":3,"name":"c"}])");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("that sluice does not implement: generatedColumns (name uses "
                              "generatedColumns)"),
            std::string::npos)
      << st.message();
}

}  // namespace
}  // namespace sluice::exec
