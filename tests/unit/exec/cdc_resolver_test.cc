// APPLY CHANGES resolution (SCD type 1): out-of-order, duplicate and deleted changes against
// the per-key state, struct sequences, TRUNCATE, IGNORE NULL UPDATES, tombstone GC, and
// agreement with a plain model over random change streams split into random micro-batches.
#include "sluice/exec/cdc_resolver.h"

#include <arrow/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace sluice::exec {
namespace {

std::shared_ptr<arrow::Array> cdc_json(const std::shared_ptr<arrow::DataType>& type, const std::string& text) {
  return arrow::json::ArrayFromJSONString(type, text).ValueOrDie();
}

struct CdcChange {
  int64_t id;
  std::optional<std::string> name;
  int64_t seq;
  std::string op = "u";  // u, d, t (truncate)
};

const auto kCdcSource = arrow::schema({arrow::field("id", arrow::int64()), arrow::field("name", arrow::utf8()),
                                    arrow::field("seq", arrow::int64()), arrow::field("op", arrow::utf8())});

CdcBatch cdc_batch(const std::vector<CdcChange>& changes) {
  arrow::Int64Builder id, seq;
  arrow::StringBuilder name, op;
  arrow::BooleanBuilder del, trunc;
  for (const auto& c : changes) {
    EXPECT_TRUE(id.Append(c.id).ok());
    EXPECT_TRUE((c.name ? name.Append(*c.name) : name.AppendNull()).ok());
    EXPECT_TRUE(seq.Append(c.seq).ok());
    EXPECT_TRUE(op.Append(c.op).ok());
    EXPECT_TRUE(del.Append(c.op == "d").ok());
    EXPECT_TRUE(trunc.Append(c.op == "t").ok());
  }
  CdcBatch b;
  auto seq_array = seq.Finish().ValueOrDie();
  b.rows = arrow::RecordBatch::Make(kCdcSource, static_cast<int64_t>(changes.size()),
                                    {id.Finish().ValueOrDie(), name.Finish().ValueOrDie(), seq_array,
                                     op.Finish().ValueOrDie()});
  b.sequence = seq_array;
  b.is_delete = del.Finish().ValueOrDie();
  b.is_truncate = trunc.Finish().ValueOrDie();
  return b;
}

// The target as id -> name, applied from the changes the way the MERGE would.
class CdcTarget {
 public:
  void apply(const arrow::Table& changes) {
    auto t = changes.CombineChunksToBatch().ValueOrDie();
    const auto& id = static_cast<const arrow::Int64Array&>(*t->GetColumnByName("id"));
    const auto& name = static_cast<const arrow::StringArray&>(*t->GetColumnByName("name"));
    const auto& action = static_cast<const arrow::Int8Array&>(*t->GetColumnByName(kActionColumn));
    for (int64_t i = 0; i < t->num_rows(); ++i) {
      std::optional<std::string> n;
      if (!name.IsNull(i)) n = name.GetString(i);
      switch (static_cast<CdcAction>(action.Value(i))) {
        case CdcAction::kDelete: rows_.erase(id.Value(i)); break;
        case CdcAction::kUpsert: rows_[id.Value(i)] = n; break;
        case CdcAction::kUpsertKeepNull:
          ASSERT_TRUE(rows_.count(id.Value(i)));
          if (n) rows_[id.Value(i)] = n;
          break;
      }
    }
  }
  const std::map<int64_t, std::optional<std::string>>& rows() const { return rows_; }

 private:
  std::map<int64_t, std::optional<std::string>> rows_;
};

class CdcResolverTest : public ::testing::Test {
 protected:
  void make(bool ignore_null_updates = false) {
    CdcSpec spec{{"id"}, {"id", "name"}, ignore_null_updates};
    auto r = CdcResolver::make(spec, kCdcSource, arrow::int64());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    resolver_ = std::move(*r);
  }
  CdcOutcome feed(const std::vector<CdcChange>& changes, int64_t now = 1000, int64_t gc_before = 0) {
    auto out = resolver_->resolve(state_, cdc_batch(changes), now, gc_before);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    state_ = out->state;
    target_.apply(*out->changes);
    return *out;
  }

  std::unique_ptr<CdcResolver> resolver_;
  std::shared_ptr<arrow::Table> state_;
  CdcTarget target_;
};

using CdcRows = std::map<int64_t, std::optional<std::string>>;

TEST_F(CdcResolverTest, LatestSequenceWinsWithinABatch) {
  make();
  feed({{1, "b", 2}, {1, "a", 1}, {2, "x", 5}, {1, "c", 3}});
  EXPECT_EQ(target_.rows(), (CdcRows{{1, "c"}, {2, "x"}}));
}

TEST_F(CdcResolverTest, LateOlderChangeNeverOverwritesANewerOne) {
  make();
  feed({{1, "new", 10}});
  auto out = feed({{1, "old", 5}});
  EXPECT_EQ(out.ignored, 1);
  EXPECT_EQ(out.changes->num_rows(), 0);
  EXPECT_EQ(target_.rows(), (CdcRows{{1, "new"}}));
}

TEST_F(CdcResolverTest, DuplicatesAreIdempotent) {
  make();
  feed({{1, "a", 1}, {1, "a", 1}});
  auto out = feed({{1, "a", 1}});
  EXPECT_EQ(out.changes->num_rows(), 0);
  EXPECT_EQ(target_.rows(), (CdcRows{{1, "a"}}));
}

TEST_F(CdcResolverTest, DeleteLeavesATombstoneThatRejectsOlderUpserts) {
  make();
  feed({{1, "a", 1}});
  feed({{1, std::nullopt, 5, "d"}});
  EXPECT_TRUE(target_.rows().empty());
  auto late = feed({{1, "late", 3}});
  EXPECT_EQ(late.ignored, 1);
  EXPECT_TRUE(target_.rows().empty());
  feed({{1, "again", 7}});
  EXPECT_EQ(target_.rows(), (CdcRows{{1, "again"}}));
}

TEST_F(CdcResolverTest, TombstonesOlderThanTheThresholdAreCollected) {
  make();
  feed({{1, "a", 1}, {2, "b", 1}});
  feed({{1, std::nullopt, 5, "d"}}, /*now=*/1000);
  EXPECT_EQ(state_->num_rows(), 2);
  auto out = feed({{2, "c", 2}}, /*now=*/5000, /*gc_before=*/2000);
  EXPECT_EQ(out.tombstones_collected, 1);
  EXPECT_EQ(state_->num_rows(), 1);
  // Collected: an older change of the deleted key is applied again, as in DLT.
  feed({{1, "late", 3}});
  EXPECT_EQ(target_.rows(), (CdcRows{{1, "late"}, {2, "c"}}));
}

TEST_F(CdcResolverTest, AnEmptySavedStateIsNoState) {
  make();
  state_ = arrow::Table::MakeEmpty(resolver_->state_schema()).ValueOrDie();  // as read back with no batch
  feed({{1, "a", 1}});
  EXPECT_EQ(target_.rows(), (CdcRows{{1, "a"}}));
}

TEST_F(CdcResolverTest, TruncateRemovesOlderRowsOnly) {
  make();
  feed({{1, "a", 1}, {2, "b", 2}});
  feed({{3, "c", 3}, {0, std::nullopt, 4, "t"}, {4, "d", 5}});
  EXPECT_EQ(target_.rows(), (CdcRows{{4, "d"}}));
}

TEST_F(CdcResolverTest, IgnoreNullUpdatesKeepsTheTargetsValue) {
  make(/*ignore_null_updates=*/true);
  feed({{1, "a", 1}});
  auto out = feed({{1, std::nullopt, 2}});
  EXPECT_EQ(out.changes->num_rows(), 1);
  EXPECT_EQ(target_.rows(), (CdcRows{{1, "a"}}));
  feed({{1, "b", 3}, {1, std::nullopt, 4}});
  EXPECT_EQ(target_.rows(), (CdcRows{{1, "b"}}));
}

TEST_F(CdcResolverTest, StructSequencesCompareFieldByField) {
  auto source = arrow::schema({arrow::field("id", arrow::int64()), arrow::field("name", arrow::utf8())});
  auto seq_type = arrow::struct_({arrow::field("a", arrow::int64()), arrow::field("b", arrow::int64())});
  auto resolver = CdcResolver::make(CdcSpec{{"id"}, {"id", "name"}, false}, source, seq_type).ValueOrDie();
  auto ids = cdc_json(arrow::int64(), "[1, 1, 1]");
  auto names = cdc_json(arrow::utf8(), R"(["a2b1", "a1b9", "a2b0"])");
  CdcBatch batch;
  batch.rows = arrow::RecordBatch::Make(source, 3, {ids, names});
  batch.sequence = cdc_json(seq_type, R"([{"a": 2, "b": 1}, {"a": 1, "b": 9}, {"a": 2, "b": 0}])");
  auto out = resolver->resolve(nullptr, batch, 0, 0).ValueOrDie();
  CdcTarget target;
  target.apply(*out.changes);
  EXPECT_EQ(target.rows(), (CdcRows{{1, "a2b1"}}));
}

TEST_F(CdcResolverTest, NullSequenceIsRefusedWithAFix) {
  make();
  auto batch = cdc_batch({{1, "a", 1}});
  batch.sequence = cdc_json(arrow::int64(), "[null]");
  auto out = resolver_->resolve(nullptr, batch, 0, 0);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("null SEQUENCE BY value"), std::string::npos) << out.status().ToString();
  EXPECT_NE(out.status().message().find("WHERE"), std::string::npos);
}

// A plain model: per key the change with the highest sequence seen so far (deletes too).
TEST_F(CdcResolverTest, RandomStreamsInRandomBatchesMatchAModel) {
  std::mt19937 rng(7);
  for (int round = 0; round < 30; ++round) {
    make();
    state_.reset();
    target_ = CdcTarget();
    std::vector<CdcChange> changes;
    for (int s = 1; s <= 200; ++s) {
      const int64_t id = rng() % 12;
      const bool del = rng() % 5 == 0;
      changes.push_back({id, del ? std::nullopt : std::optional<std::string>("v" + std::to_string(s)), s, del ? "d" : "u"});
      if (rng() % 6 == 0) changes.push_back(changes[rng() % changes.size()]);  // a duplicate
    }
    // Bounded shuffle: each change moves up to 8 places.
    for (size_t i = 0; i + 1 < changes.size(); ++i) std::swap(changes[i], changes[std::min(changes.size() - 1, i + rng() % 8)]);
    std::map<int64_t, CdcChange> model;
    for (const auto& c : changes) {
      auto it = model.find(c.id);
      if (it == model.end() || it->second.seq < c.seq) model[c.id] = c;
    }
    for (size_t at = 0; at < changes.size();) {
      const size_t n = 1 + rng() % 40;
      feed(std::vector<CdcChange>(changes.begin() + at, changes.begin() + std::min(changes.size(), at + n)));
      at += n;
    }
    CdcRows want;
    for (const auto& [id, c] : model) {
      if (c.op == "u") want[id] = c.name;
    }
    ASSERT_EQ(target_.rows(), want) << "round " << round;
  }
}

}  // namespace
}  // namespace sluice::exec
