// A table brought in line with its definition by Spark-shaped metadata commits
// (delta/table_definition.h).
#include "sluice/delta/table_definition.h"

#include <arrow/api.h>
#include <arrow/util/key_value_metadata.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "../temp_dir.h"
#include "sluice/delta/schema.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_features.h"
#include "sluice/delta/transaction.h"

namespace sluice::delta {
namespace {

class TableDefinitionTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  std::shared_ptr<LogStore> store_ = std::make_shared<LogStore>(dir_.path() / "t");

  static std::shared_ptr<arrow::Schema> schema(const std::string& email_comment = "") {
    auto email = arrow::field("email", arrow::utf8());
    if (!email_comment.empty()) email = email->WithMetadata(arrow::key_value_metadata({"comment"}, {email_comment}));
    return arrow::schema({arrow::field("id", arrow::int64()), email, arrow::field("day", arrow::utf8())});
  }

  void create(const TableDefinition& d) {
    Transaction txn(store_, nullptr);
    txn.set_protocol(protocol_for_schema(*d.schema));
    auto m = new_table_metadata(*d.schema, "t", d.description, d.partition_columns);
    ASSERT_TRUE(m.ok());
    m->configuration = with_defined_properties(d.configuration);  // as the flows create tables
    txn.set_metadata(*m);
    ASSERT_TRUE(txn.commit({}).ok());
  }

  std::shared_ptr<const Snapshot> latest() { return *Snapshot::load(*store_); }

  static TableDefinition base() {
    TableDefinition d;
    d.description = "raw";
    d.configuration = {{"sluice.quarantine", "true"}};
    d.partition_columns = {"day"};
    d.schema = schema();
    return d;
  }
};

TEST_F(TableDefinitionTest, AMatchingTableGetsNoCommit) {
  create(base());
  auto done = apply_table_definition(store_, base(), "t");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(done->empty());
  EXPECT_EQ(latest()->version(), DeltaVersion(0));
}

TEST_F(TableDefinitionTest, EnablingTheChangeDataFeedSetsThePropertyAndRaisesTheWriterVersion) {
  create(base());
  auto d = base();
  d.configuration["delta.enableChangeDataFeed"] = "true";
  auto done = apply_table_definition(store_, d, "t");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  ASSERT_EQ(done->size(), 1u);
  EXPECT_EQ((*done)[0].operation, "SET TBLPROPERTIES");
  auto snap = latest();
  EXPECT_EQ(snap->metadata().configuration.at("delta.enableChangeDataFeed"), "true");
  EXPECT_EQ(snap->protocol().min_writer_version, 4);
  EXPECT_EQ(snap->protocol().min_reader_version, 1);
}

TEST_F(TableDefinitionTest, EnablingDeletionVectorsMovesToTableFeaturesKeepingTheChangeDataFeed) {
  auto d = base();
  d.configuration["delta.enableChangeDataFeed"] = "true";
  create(d);
  {
    Transaction raise(store_, latest());
    raise.set_protocol(Protocol{1, 4, std::nullopt, std::nullopt});
    ASSERT_TRUE(raise.commit({}).ok());
  }
  d.configuration["delta.enableDeletionVectors"] = "true";
  ASSERT_TRUE(apply_table_definition(store_, d, "t").ok());
  auto snap = latest();
  const auto& p = snap->protocol();
  EXPECT_EQ(p.min_reader_version, 3);
  EXPECT_EQ(p.min_writer_version, 7);
  EXPECT_EQ(*p.reader_features, std::vector<std::string>({"deletionVectors"}));
  for (const char* f : {"appendOnly", "invariants", "checkConstraints", "deletionVectors", "changeDataFeed"}) {
    EXPECT_NE(std::find(p.writer_features->begin(), p.writer_features->end(), f), p.writer_features->end()) << f;
  }
}

TEST_F(TableDefinitionTest, ARemovedPropertyAndCommentAreUnsetButCheckConstraintsStay) {
  auto d = base();
  d.configuration["delta.constraints.id_positive"] = "id > 0";
  create(d);
  auto now = base();
  now.configuration.clear();
  now.description.reset();
  auto done = apply_table_definition(store_, now, "t");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  ASSERT_EQ(done->size(), 1u);
  EXPECT_EQ((*done)[0].operation, "UNSET TBLPROPERTIES");
  auto snap = latest();
  EXPECT_EQ(snap->metadata().configuration,
            (std::map<std::string, std::string>{{"delta.constraints.id_positive", "id > 0"},
                                                {"sluice.definedProperties", "[]"}}));
  EXPECT_FALSE(snap->metadata().description.has_value());
}

TEST_F(TableDefinitionTest, AChangedColumnCommentIsOneChangeColumnCommit) {
  create(base());
  auto d = base();
  d.description = "raw events";
  d.schema = schema("the address");
  auto done = apply_table_definition(store_, d, "t");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  ASSERT_EQ(done->size(), 2u);
  EXPECT_EQ((*done)[0].operation, "SET TBLPROPERTIES");
  EXPECT_EQ((*done)[1].operation, "CHANGE COLUMN");
  auto snap = latest();
  EXPECT_EQ(*snap->metadata().description, "raw events");
  auto email = snap->schema()->GetFieldByName("email");
  ASSERT_TRUE(email->metadata());
  EXPECT_EQ(*email->metadata()->Get("comment"), "the address");
  // Run again: nothing left to do.
  auto again = apply_table_definition(store_, d, "t");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
}

TEST_F(TableDefinitionTest, ColumnTagsAreKeptInTheColumnMetadata) {
  create(base());
  auto d = base();
  d.schema = arrow::schema({arrow::field("id", arrow::int64()),
                            arrow::field("email", arrow::utf8())
                                ->WithMetadata(arrow::key_value_metadata({"sluice.tag.pii"}, {"email"})),
                            arrow::field("day", arrow::utf8())});
  ASSERT_TRUE(apply_table_definition(store_, d, "t").ok());
  EXPECT_NE(latest()->metadata().schema_string.find(R"("metadata":{"sluice.tag.pii":"email"})"), std::string::npos)
      << latest()->metadata().schema_string;
}

TEST_F(TableDefinitionTest, ChangedPartitionColumnsAreRefusedNamingTableAndColumns) {
  create(base());
  auto d = base();
  d.partition_columns = {"id"};
  auto done = apply_table_definition(store_, d, "t");
  ASSERT_FALSE(done.ok());
  EXPECT_NE(done.status().message().find("table 't' is partitioned by (day) but its definition says PARTITIONED BY (id)"),
            std::string::npos)
      << done.status().message();
  EXPECT_EQ(latest()->version(), DeltaVersion(0));
}

TEST_F(TableDefinitionTest, ColumnMappingCannotBeTurnedOnInPlace) {
  create(base());
  auto d = base();
  d.configuration["delta.columnMapping.mode"] = "name";
  auto done = apply_table_definition(store_, d, "t");
  ASSERT_FALSE(done.ok());
  EXPECT_TRUE(done.status().IsNotImplemented());
  EXPECT_NE(done.status().message().find("'delta.columnMapping.mode'"), std::string::npos);
}

TEST_F(TableDefinitionTest, ADeltaPropertySluiceDoesNotHonourIsRefusedNamingTableAndKey) {
  create(base());
  for (const char* key : {"delta.enableInCommitTimestamps", "delta.dataSkippingNumIndexedCols", "delta.appendonly"}) {
    auto d = base();
    d.configuration[key] = "true";
    auto done = apply_table_definition(store_, d, "t");
    ASSERT_FALSE(done.ok()) << key;
    EXPECT_TRUE(done.status().IsNotImplemented());
    EXPECT_NE(done.status().message().find(fmt::format("table 't': table property '{}' is not supported by sluice", key)),
              std::string::npos)
        << done.status().message();
  }
  EXPECT_EQ(latest()->version(), DeltaVersion(0));
  // The ones sluice honours go through.
  auto d = base();
  d.configuration["delta.targetFileSize"] = "64mb";
  d.configuration["delta.logRetentionDuration"] = "interval 40 days";
  ASSERT_TRUE(apply_table_definition(store_, d, "t").ok());
  EXPECT_EQ(latest()->metadata().configuration.at("delta.targetFileSize"), "64mb");
}

TEST_F(TableDefinitionTest, DeltaPropertiesAreCheckedAgainstWhatSluiceHonours) {
  EXPECT_TRUE(check_delta_properties({{"delta.appendOnly", "true"},
                                      {"delta.constraints.id_positive", "id > 0"},
                                      {"delta.enableChangeDataFeed", "true"},
                                      {"delta.enableDeletionVectors", "true"},
                                      {"delta.checkpointInterval", "5"},
                                      {"owner", "me"},
                                      {"sluice.quarantine", "true"}},
                                     "t")
                  .ok());
  auto refused = check_delta_properties({{"delta.enableRowTracking", "true"}}, "events");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("table 'events': table property 'delta.enableRowTracking' is not supported"),
            std::string::npos)
      << refused.message();
  EXPECT_FALSE(check_delta_properties({{"delta.constraints.", "x"}}, "t").ok());
}

// delta.checkpointInterval is honoured as a number: text that is not a positive one is refused
// when set, not taken as its leading digits ("5abc" was 5) or dropped for the default.
TEST_F(TableDefinitionTest, CheckpointIntervalMustBeAPositiveWholeNumber) {
  for (const std::string bad : {"5abc", "0", "-3", "", " 5", "99999999999999999999"}) {
    auto refused = check_delta_properties({{"delta.checkpointInterval", bad}}, "events");
    ASSERT_FALSE(refused.ok()) << "'" << bad << "'";
    EXPECT_EQ(refused.message(), "table 'events': delta.checkpointInterval = '" + bad +
                                     "' is not a positive whole number of commits; set it to e.g. 10 (a "
                                     "checkpoint every 10 commits)");
  }
}

TEST_F(TableDefinitionTest, ANewCheckConstraintOnATableWithRowsIsRefusedButSetOnAnEmptyOne) {
  create(base());
  auto d = base();
  d.configuration["delta.constraints.id_positive"] = "id > 0";
  // Empty table (e.g. just reset by --full-refresh): nothing to check, the constraint is set.
  {
    auto done = apply_table_definition(store_, d, "t");
    ASSERT_TRUE(done.ok()) << done.status().ToString();
    EXPECT_EQ(latest()->metadata().configuration.at("delta.constraints.id_positive"), "id > 0");
  }
  {
    Transaction txn(store_, latest());
    Add add;
    add.path = "day=x/part-0.parquet";
    add.size = 1;
    add.partition_values = {{"day", "x"}};
    add.stats = R"({"numRecords":10})";
    txn.add_file(add);
    ASSERT_TRUE(txn.commit({}).ok());
  }
  const auto version = latest()->version();
  d.configuration["delta.constraints.id_positive"] = "id > 1";  // changed
  d.configuration["delta.constraints.day_set"] = "day IS NOT NULL";  // new
  auto done = apply_table_definition(store_, d, "t");
  ASSERT_FALSE(done.ok());
  EXPECT_NE(done.status().message().find("table 't': adding CHECK constraint 'day_set' ('day IS NOT NULL') on an "
                                         "existing table with data is not supported"),
            std::string::npos)
      << done.status().message();
  EXPECT_NE(done.status().message().find("--full-refresh t"), std::string::npos);
  d.configuration.erase("delta.constraints.day_set");
  done = apply_table_definition(store_, d, "t");
  ASSERT_FALSE(done.ok());
  EXPECT_NE(done.status().message().find("changing CHECK constraint 'id_positive' ('id > 1')"), std::string::npos)
      << done.status().message();
  EXPECT_EQ(latest()->version(), version);
}

TEST_F(TableDefinitionTest, APropertySetOutsideTheDefinitionIsLeftAloneAndADefinedOneIsUnset) {
  auto d = base();
  d.configuration["delta.enableChangeDataFeed"] = "true";
  create(d);
  {
    // An admin's ALTER TABLE SET TBLPROPERTIES ('delta.targetFileSize' = '64mb').
    Transaction txn(store_, latest());
    auto m = latest()->metadata();
    m.configuration["delta.targetFileSize"] = "64mb";
    txn.set_metadata(m);
    ASSERT_TRUE(txn.commit({}).ok());
  }
  auto same = apply_table_definition(store_, d, "t");
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_TRUE(same->empty());
  auto done = apply_table_definition(store_, base(), "t");  // the change data feed removed
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  ASSERT_EQ(done->size(), 1u);
  EXPECT_EQ((*done)[0].operation, "UNSET TBLPROPERTIES");
  EXPECT_EQ(latest()->metadata().configuration,
            (std::map<std::string, std::string>{{"delta.targetFileSize", "64mb"},
                                                {"sluice.definedProperties", R"(["sluice.quarantine"])"},
                                                {"sluice.quarantine", "true"}}));
  auto again = apply_table_definition(store_, base(), "t");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
}

TEST_F(TableDefinitionTest, ATableWithoutARecordGetsOneAndLosesNoProperty) {
  {
    Transaction txn(store_, nullptr);
    txn.set_protocol(protocol_for_schema(*schema()));
    auto m = new_table_metadata(*schema(), "t", std::string("raw"), {"day"});
    ASSERT_TRUE(m.ok());
    m->configuration = {{"sluice.quarantine", "true"}, {"owner", "admin"}};
    txn.set_metadata(*m);
    ASSERT_TRUE(txn.commit({}).ok());
  }
  auto done = apply_table_definition(store_, base(), "t");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  ASSERT_EQ(done->size(), 1u);
  EXPECT_EQ((*done)[0].operation, "SET TBLPROPERTIES");
  EXPECT_EQ(latest()->metadata().configuration.at("owner"), "admin");
  EXPECT_EQ(latest()->metadata().configuration.at("sluice.definedProperties"), R"(["sluice.quarantine"])");
}

TEST_F(TableDefinitionTest, NoTableYetIsNothingToDo) {
  auto done = apply_table_definition(store_, base(), "t");
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->empty());
}

}  // namespace
}  // namespace sluice::delta
