// The protocol a table with CHECK constraints (delta.constraints.*) needs (table_features.h):
// writer version 3, or the checkConstraints writer feature (PROTOCOL.md "CHECK Constraints").
#include <arrow/api.h>
#include <gtest/gtest.h>

#include "../temp_dir.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_features.h"
#include "sluice/delta/table_writer.h"
#include "sluice/exec/constraint_checker.h"

namespace sluice::delta {
namespace {

const std::map<std::string, std::string> kPositiveId = {{"delta.constraints.id_positive", "id > 0"}};

TEST(ConstraintProtocol, LegacyTablesGetWriterVersionThree) {
  Protocol legacy;  // (1, 2)
  auto raised = protocol_for_properties(legacy, kPositiveId);
  ASSERT_TRUE(raised.has_value());
  EXPECT_EQ(raised->min_reader_version, 1);
  EXPECT_EQ(raised->min_writer_version, 3);
  EXPECT_FALSE(raised->writer_features.has_value());
  EXPECT_FALSE(protocol_for_properties(*raised, kPositiveId).has_value());
  EXPECT_FALSE(protocol_for_properties(legacy, {{"delta.constraintsx", "id > 0"}}).has_value());
}

TEST(ConstraintProtocol, WithTheChangeDataFeedTheHigherVersionWins) {
  auto both = kPositiveId;
  both["delta.enableChangeDataFeed"] = "true";
  auto raised = protocol_for_properties(Protocol{}, both);
  ASSERT_TRUE(raised.has_value());
  EXPECT_EQ(raised->min_writer_version, 4);
  Protocol four{1, 4, std::nullopt, std::nullopt};
  EXPECT_FALSE(protocol_for_properties(four, kPositiveId).has_value());
}

TEST(ConstraintProtocol, TableFeatureTablesListCheckConstraints) {
  Protocol features{3, 7, std::vector<std::string>{"deletionVectors"},
                    std::vector<std::string>{"appendOnly", "invariants", "deletionVectors"}};
  auto raised = protocol_for_properties(features, kPositiveId);
  ASSERT_TRUE(raised.has_value());
  EXPECT_EQ(raised->min_writer_version, 7);
  EXPECT_EQ(*raised->writer_features,
            (std::vector<std::string>{"appendOnly", "invariants", "deletionVectors", "checkConstraints"}));
  EXPECT_EQ(*raised->reader_features, (std::vector<std::string>{"deletionVectors"}));  // writer-only
  EXPECT_FALSE(protocol_for_properties(*raised, kPositiveId).has_value());
}

TEST(ConstraintProtocol, NewTableWithAConstraintIsCreatedAtWriterVersionThree) {
  sluice::testing::TempDir dir;
  auto store = std::make_shared<LogStore>(dir.path() / "t");
  auto schema = arrow::schema({arrow::field("id", arrow::int64())});
  WriteOptions options;
  options.configuration = kPositiveId;
  options.constraints = exec::sql_constraint_compiler();  // as sluice's writers evaluate them
  auto writer = TableWriter::make(store, nullptr, *schema, options).ValueOrDie();
  auto txn = writer->finish().ValueOrDie();
  ASSERT_TRUE(txn.commit({}).ok());
  auto snap = Snapshot::load(*store).ValueOrDie();
  EXPECT_EQ(snap->protocol().min_reader_version, 1);
  EXPECT_EQ(snap->protocol().min_writer_version, 3);
  EXPECT_TRUE(check_write_supported(snap->protocol(), snap->metadata(), "t").ok());
}

}  // namespace
}  // namespace sluice::delta
