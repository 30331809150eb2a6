// APPLY CHANGES into SCD type 2: versions opened and closed in sequence order, late changes
// landing between versions, duplicates, deletes, untracked columns updated in place.
#include "sluice/exec/cdc_history.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace sluice::exec {
namespace {

struct HistoryChange {
  int64_t id;
  std::string name;
  std::string city;
  int64_t seq;
  bool del = false;
};

// (id, name, city, start, end or -1)
using HistoryRow = std::tuple<int64_t, std::string, std::string, int64_t, int64_t>;

const auto kHistorySource = arrow::schema(
    {arrow::field("id", arrow::int64()), arrow::field("name", arrow::utf8()), arrow::field("city", arrow::utf8())});

class CdcHistoryTest : public ::testing::Test {
 protected:
  void make(std::vector<std::string> tracked = {}) {
    auto r = CdcHistoryResolver::make(CdcHistorySpec{{"id"}, {"id", "name", "city"}, std::move(tracked)}, kHistorySource,
                                      arrow::int64());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    resolver_ = std::move(*r);
  }

  // Resolves `changes` against the target and applies the result as the MERGE would.
  CdcOutcome feed(const std::vector<HistoryChange>& changes) {
    arrow::Int64Builder id, seq;
    arrow::StringBuilder name, city;
    arrow::BooleanBuilder del;
    for (const auto& c : changes) {
      EXPECT_TRUE(id.Append(c.id).ok() && name.Append(c.name).ok() && city.Append(c.city).ok() &&
                  seq.Append(c.seq).ok() && del.Append(c.del).ok());
    }
    CdcBatch batch;
    batch.rows = arrow::RecordBatch::Make(kHistorySource, static_cast<int64_t>(changes.size()),
                                          {id.Finish().ValueOrDie(), name.Finish().ValueOrDie(),
                                           city.Finish().ValueOrDie()});
    batch.sequence = seq.Finish().ValueOrDie();
    batch.is_delete = del.Finish().ValueOrDie();
    auto out = resolver_->resolve(target_table(), batch, tombstones_, now_ms_, gc_before_ms_);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    tombstones_ = out->state;
    auto t = out->changes->CombineChunksToBatch().ValueOrDie();
    for (int64_t i = 0; i < t->num_rows(); ++i) {
      auto text = [&](const char* c) {
        const auto& a = static_cast<const arrow::StringArray&>(*t->GetColumnByName(c));
        return a.IsNull(i) ? std::string("null") : a.GetString(i);
      };
      const int64_t key = static_cast<const arrow::Int64Array&>(*t->GetColumnByName("id")).Value(i);
      const auto& start = static_cast<const arrow::Int64Array&>(*t->GetColumnByName(kStartAt));
      const auto& end = static_cast<const arrow::Int64Array&>(*t->GetColumnByName(kEndAt));
      const auto& action = static_cast<const arrow::Int8Array&>(*t->GetColumnByName(kActionColumn));
      const auto at = std::make_pair(key, start.Value(i));
      if (static_cast<CdcAction>(action.Value(i)) == CdcAction::kDelete) {
        EXPECT_EQ(rows_.erase(at), 1u);
      } else {
        rows_[at] = HistoryRow{key, text("name"), text("city"), start.Value(i), end.IsNull(i) ? -1 : end.Value(i)};
      }
    }
    return *out;
  }

  std::shared_ptr<arrow::Table> target_table() const {
    arrow::Int64Builder id, start, end;
    arrow::StringBuilder name, city;
    for (const auto& [at, r] : rows_) {
      EXPECT_TRUE(id.Append(std::get<0>(r)).ok() && name.Append(std::get<1>(r)).ok() &&
                  city.Append(std::get<2>(r)).ok() && start.Append(std::get<3>(r)).ok());
      EXPECT_TRUE((std::get<4>(r) < 0 ? end.AppendNull() : end.Append(std::get<4>(r))).ok());
    }
    auto schema = arrow::schema({arrow::field("id", arrow::int64()), arrow::field("name", arrow::utf8()),
                                 arrow::field("city", arrow::utf8()), arrow::field(kStartAt, arrow::int64()),
                                 arrow::field(kEndAt, arrow::int64())});
    return arrow::Table::Make(schema, {id.Finish().ValueOrDie(), name.Finish().ValueOrDie(),
                                       city.Finish().ValueOrDie(), start.Finish().ValueOrDie(),
                                       end.Finish().ValueOrDie()});
  }

  std::vector<HistoryRow> rows() const {
    std::vector<HistoryRow> out;
    for (const auto& [at, r] : rows_) out.push_back(r);
    return out;
  }

  std::unique_ptr<CdcHistoryResolver> resolver_;
  std::map<std::pair<int64_t, int64_t>, HistoryRow> rows_;  // by (id, start)
  std::shared_ptr<arrow::Table> tombstones_;                 // the state between batches
  int64_t now_ms_ = 1000, gc_before_ms_ = 0;
};

TEST_F(CdcHistoryTest, ChangesOpenAndCloseVersionsInSequenceOrder) {
  make();
  feed({{1, "a", "x", 20}, {1, "b", "x", 10}});
  feed({{1, "c", "y", 30}, {2, "z", "z", 5}});
  EXPECT_EQ(rows(), (std::vector<HistoryRow>{{1, "b", "x", 10, 20}, {1, "a", "x", 20, 30}, {1, "c", "y", 30, -1},
                                      {2, "z", "z", 5, -1}}));
}

TEST_F(CdcHistoryTest, ALateChangeSplitsTheVersionItFallsIn) {
  make();
  feed({{1, "a", "x", 10}, {1, "c", "x", 30}});
  feed({{1, "b", "x", 20}});
  EXPECT_EQ(rows(), (std::vector<HistoryRow>{{1, "a", "x", 10, 20}, {1, "b", "x", 20, 30}, {1, "c", "x", 30, -1}}));
}

TEST_F(CdcHistoryTest, DeleteClosesTheVersionAndALaterUpsertOpensANewOne) {
  make();
  feed({{1, "a", "x", 10}, {1, "", "", 20, true}});
  EXPECT_EQ(rows(), (std::vector<HistoryRow>{{1, "a", "x", 10, 20}}));
  feed({{1, "b", "x", 30}, {1, "late", "x", 15}});
  EXPECT_EQ(rows(), (std::vector<HistoryRow>{{1, "a", "x", 10, 15}, {1, "late", "x", 15, 20}, {1, "b", "x", 30, -1}}));
}

TEST_F(CdcHistoryTest, DuplicatesChangeNothing) {
  make();
  feed({{1, "a", "x", 10}, {1, "b", "x", 20}});
  auto out = feed({{1, "a", "x", 10}, {1, "b", "x", 20}, {1, "b", "x", 20}});
  EXPECT_EQ(out.changes->num_rows(), 0);
  EXPECT_EQ(out.ignored, 3);
  EXPECT_EQ(rows(), (std::vector<HistoryRow>{{1, "a", "x", 10, 20}, {1, "b", "x", 20, -1}}));
}

TEST_F(CdcHistoryTest, UntrackedColumnsChangeTheOpenVersionInPlace) {
  make({"id", "name"});
  feed({{1, "a", "x", 10}, {1, "a", "y", 20}, {1, "b", "y", 30}});
  EXPECT_EQ(rows(), (std::vector<HistoryRow>{{1, "a", "y", 10, 30}, {1, "b", "y", 30, -1}}));
}

// A delete that closed nothing leaves no row in the table; its tombstone still closes the
// version an older upsert opens in a later batch (the chaos test's reordering across partitions).
TEST_F(CdcHistoryTest, ADeleteThatClosedNothingClosesALaterArrivingOlderUpsert) {
  make();
  feed({{1, "a", "x", 10}, {1, "", "", 20, true}, {1, "", "", 40, true}});
  ASSERT_EQ(tombstones_->num_rows(), 1);  // the delete at 40
  feed({{1, "late", "x", 30}});
  EXPECT_EQ(rows(), (std::vector<HistoryRow>{{1, "a", "x", 10, 20}, {1, "late", "x", 30, 40}}));
  EXPECT_EQ(tombstones_->num_rows(), 0);  // in the table now
  feed({{1, "", "", 50, true}});
  feed({{1, "dup", "x", 50}, {2, "b", "x", 45}});  // as old as the delete: a duplicate
  EXPECT_EQ(rows(), (std::vector<HistoryRow>{{1, "a", "x", 10, 20}, {1, "late", "x", 30, 40}, {2, "b", "x", 45, -1}}));
}

TEST_F(CdcHistoryTest, TombstonesOfOtherKeysAreKeptUntilCollected) {
  make();
  feed({{1, "", "", 20, true}, {2, "", "", 20, true}});
  EXPECT_EQ(tombstones_->num_rows(), 2);
  feed({{3, "c", "x", 5}});
  EXPECT_EQ(tombstones_->num_rows(), 2);
  gc_before_ms_ = now_ms_ + 1;  // both older than the threshold
  feed({{3, "d", "x", 6}});
  EXPECT_EQ(tombstones_->num_rows(), 0);
  feed({{1, "late", "x", 10}});  // collected: opens a version nothing closes, as in DLT
  EXPECT_EQ(rows(), (std::vector<HistoryRow>{{1, "late", "x", 10, -1}, {3, "c", "x", 5, 6}, {3, "d", "x", 6, -1}}));
}

// A target switched from SCD type 1 without a full refresh: its per-key state is no tombstones.
TEST_F(CdcHistoryTest, StateOfAnotherShapeIsRefusedNotRead) {
  make();
  tombstones_ = arrow::Table::MakeEmpty(arrow::schema({arrow::field("id", arrow::int64()),
                                                       arrow::field("__sequence_scd1", arrow::int64()),
                                                       arrow::field("__deleted", arrow::boolean())}))
                    .ValueOrDie();
  arrow::Int64Builder id, seq;
  ASSERT_TRUE(id.Append(1).ok() && seq.Append(10).ok());
  CdcBatch batch;
  batch.rows = arrow::RecordBatch::Make(
      kHistorySource, 1,
      {id.Finish().ValueOrDie(), arrow::MakeArrayFromScalar(arrow::StringScalar("a"), 1).ValueOrDie(),
       arrow::MakeArrayFromScalar(arrow::StringScalar("x"), 1).ValueOrDie()});
  batch.sequence = seq.Finish().ValueOrDie();
  auto one_row = arrow::Table::Make(tombstones_->schema(),
                                    {arrow::MakeArrayFromScalar(arrow::Int64Scalar(1), 1).ValueOrDie(),
                                     arrow::MakeArrayFromScalar(arrow::Int64Scalar(5), 1).ValueOrDie(),
                                     arrow::MakeArrayFromScalar(arrow::BooleanScalar(true), 1).ValueOrDie()});
  auto out = resolver_->resolve(target_table(), batch, one_row, now_ms_, gc_before_ms_);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("run a full refresh"), std::string::npos) << out.status().ToString();
}

}  // namespace
}  // namespace sluice::exec
