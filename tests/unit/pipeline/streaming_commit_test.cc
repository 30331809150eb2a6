// The streaming commit protocol on real Delta tables: rows and progress land in one version,
// side tables and state carry the same progress, and a crash between the steps (the object
// dropped before the target's commit, or a commit that loses) resumes from the target's progress.
#include "sluice/pipeline/streaming_commit.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <fstream>

#include "../temp_dir.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/table.h"
#include "sluice/pipeline/pipeline_identity.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<arrow::Schema> rows_schema() { return arrow::schema({arrow::field("v", arrow::int64())}); }

std::shared_ptr<arrow::RecordBatch> rows(std::vector<int64_t> values) {
  arrow::Int64Builder b;
  EXPECT_TRUE(b.AppendValues(values).ok());
  return arrow::RecordBatch::Make(rows_schema(), static_cast<int64_t>(values.size()), {b.Finish().ValueOrDie()});
}

// The values of a table's column v as the Delta reader sees them, sorted.
std::vector<int64_t> table_values(const fs::path& path) {
  delta::LogStore store(path);
  auto snapshot = delta::Snapshot::load(store).ValueOrDie();
  auto table = delta::scan_table(store, *snapshot).ValueOrDie();
  std::vector<int64_t> out;
  for (const auto& chunk : table->GetColumnByName("v")->chunks()) {
    const auto& a = static_cast<const arrow::Int64Array&>(*chunk);
    for (int64_t i = 0; i < a.length(); ++i) out.push_back(a.Value(i));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The txn actions in one commit file of a table's log, as "appId=version".
std::vector<std::string> txns_in_commit(const fs::path& table, int64_t version) {
  std::ifstream in(table / "_delta_log" / fmt::format("{:020}.json", version));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("txn")) {
      out.push_back(j["txn"]["appId"].get<std::string>() + "=" + std::to_string(j["txn"]["version"].get<int64_t>()));
    }
  }
  return out;
}

// An operator's state: a watermark and rows, as a window operator keeps them.
class FakeOperatorState : public CommittedState {
 public:
  int64_t watermark = exec::WindowState::kNoWatermark;
  std::vector<int64_t> open;
  bool restored_empty = false;
  bool unchanged = false;  // says so to the commit: no new snapshot

  arrow::Result<std::vector<exec::WindowState>> snapshot_state() override {
    if (unchanged) return std::vector<exec::WindowState>{};
    exec::WindowState s;
    s.watermark = watermark;
    ARROW_ASSIGN_OR_RAISE(s.open_rows, arrow::Table::FromRecordBatches(rows_schema(), {rows(open)}));
    return std::vector<exec::WindowState>{s};
  }
  arrow::Status restore_state(std::optional<std::vector<exec::WindowState>> parts) override {
    restored_empty = !parts;
    if (!parts) return arrow::Status::OK();
    watermark = parts->front().watermark;
    open.clear();
    ARROW_ASSIGN_OR_RAISE(auto batch, parts->front().open_rows->CombineChunksToBatch());
    if (!batch) return arrow::Status::OK();
    const auto& a = static_cast<const arrow::Int64Array&>(*batch->column(0));
    for (int64_t i = 0; i < a.length(); ++i) open.push_back(a.Value(i));
    return arrow::Status::OK();
  }
};

class StreamingCommitTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  PipelineId pipeline_ = [this] {
    PipelineConfig config;
    config.name = "shop";
    config.dir = dir_.path() / "shop";
    config.storage = dir_.path() / "storage";
    return open_pipeline_identity(config, {}).ValueOrDie().identity.id;
  }();

  fs::path target() const { return dir_.path() / "orders"; }
  fs::path side() const { return dir_.path() / "orders_quarantine"; }

  std::unique_ptr<StreamingCommit> open() {
    StreamingCommitOptions o;
    o.pipeline = pipeline_;
    o.flow = "orders_flow";
    o.table = "orders";
    o.table_path = target();
    o.schema = rows_schema();
    auto c = StreamingCommit::make(std::move(o));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.MoveValueUnsafe();
  }

  SideTable* open_side(StreamingCommit& c) {
    auto t = c.open_side_table(side(), "orders_quarantine", rows_schema(), "test side table");
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return *t;
  }

  static SourceProgress kafka_at(const StreamingCommit& c, int64_t next) {
    auto p = c.progress();
    p.kafka("events", KafkaPartition(0), KafkaOffset(next));
    return p;
  }
};

TEST_F(StreamingCommitTest, ProgressIdsAreBuiltFromPipelineIdFlowAndSource) {
  auto c = open();
  const auto& ids = c->ids();
  EXPECT_EQ(ids.kafka("events", KafkaPartition(3)), "shop/orders_flow/events/3");
  EXPECT_EQ(ids.kafka_last_record("events", KafkaPartition(3)), "sluice:last_record:shop/orders_flow/events/3");
  EXPECT_EQ(ids.delta("tid"), "shop/orders_flow/tid");
  EXPECT_EQ(ids.delta("tid", DeltaReader::kSelfJoinRight), "shop/orders_flow/tid/right");
  EXPECT_TRUE(ids.owns("shop/orders_flow/events/3"));
  EXPECT_FALSE(ids.owns("shop/other_flow/events/3"));
  EXPECT_FALSE(ids.owns(ids.kafka_last_record("events", KafkaPartition(3))));
}

TEST_F(StreamingCommitTest, RowsAndProgressLandInOneVersionAndResumeReadsTheProgress) {
  {
    auto c = open();
    EXPECT_EQ(c->snapshot(), nullptr);
    ASSERT_TRUE((*c->writer())->write(*rows({1, 2, 3})).ok());
    auto p = kafka_at(*c, 3);
    p.delta("upstream-id", DeltaReader::kOnly, DeltaVersion(7));
    auto r = c->commit(p, {{"queryId", "q"}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->version.value(), 0);
    EXPECT_EQ(c->rows_committed(), 3);
  }
  auto resumed = open();
  ASSERT_NE(resumed->snapshot(), nullptr);
  EXPECT_EQ(resumed->recorded(resumed->ids().kafka("events", KafkaPartition(0))), 3);
  EXPECT_EQ(resumed->recorded(resumed->ids().delta("upstream-id")), 7);
  EXPECT_EQ(resumed->ids().recorded_in(resumed->snapshot().get()).size(), 2u);
  EXPECT_EQ(table_values(target()), (std::vector<int64_t>{1, 2, 3}));
}

TEST_F(StreamingCommitTest, ACommitRecordsOnlyProgressAndMarkersThatChanged) {
  auto c = open();
  auto p = kafka_at(*c, 3);
  p.kafka("events", KafkaPartition(1), KafkaOffset(5));
  p.kafka_last_record("events", KafkaPartition(0), 42);
  p.kafka_last_record("events", KafkaPartition(1), -1);  // none, never recorded: not written
  ASSERT_TRUE(c->commit(p).ok());
  auto q = kafka_at(*c, 4);
  q.kafka("events", KafkaPartition(1), KafkaOffset(5));
  q.kafka_last_record("events", KafkaPartition(0), 42);
  q.kafka_last_record("events", KafkaPartition(1), -1);
  ASSERT_TRUE(c->commit(q).ok());
  EXPECT_EQ(txns_in_commit(target(), 0),
            (std::vector<std::string>{"shop/orders_flow/events/0=3", "shop/orders_flow/events/1=5",
                                      "sluice:last_record:shop/orders_flow/events/0=42"}));
  EXPECT_EQ(txns_in_commit(target(), 1), (std::vector<std::string>{"shop/orders_flow/events/0=4"}));
}

TEST_F(StreamingCommitTest, SideTablesCommitBeforeTheTargetWithTheSameProgress) {
  auto c = open();
  auto* q = open_side(*c);
  ASSERT_TRUE(q->write(*rows({10, 11})).ok());
  ASSERT_TRUE((*c->writer())->write(*rows({1})).ok());
  ASSERT_TRUE(c->commit(kafka_at(*c, 3)).ok());
  const auto app = c->ids().kafka("events", KafkaPartition(0));
  EXPECT_EQ(table_values(side()), (std::vector<int64_t>{10, 11}));
  EXPECT_EQ(txns_in_commit(side(), 0), (std::vector<std::string>{app + "=3"}));
  EXPECT_EQ(c->recorded(app), 3);
  // Side table and target were both at version 0 and record the same progress.
  delta::LogStore side_store(side());
  EXPECT_EQ(delta::Snapshot::load(side_store).ValueOrDie()->txn_version(app), 3);
}

TEST_F(StreamingCommitTest, ACrashBeforeTheTargetCommitResumesFromTheTargetsProgress) {
  const std::string app = "shop/orders_flow/events/0";
  {  // first update: offsets 0-2
    auto c = open();
    auto* q = open_side(*c);
    ASSERT_TRUE(q->write(*rows({100})).ok());
    ASSERT_TRUE((*c->writer())->write(*rows({0, 1, 2})).ok());
    ASSERT_TRUE(c->commit(kafka_at(*c, 3)).ok());
  }
  {  // second update: offsets 3-5; the side table commits (step 2), then the process dies
    auto c = open();
    auto* q = open_side(*c);
    ASSERT_TRUE(q->write(*rows({103})).ok());
    ASSERT_TRUE((*c->writer())->write(*rows({3, 4, 5})).ok());
    ASSERT_TRUE(q->commit(kafka_at(*c, 6).positions()).ok());
  }  // dropped: the target's files are never committed
  EXPECT_EQ(table_values(target()), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(table_values(side()), (std::vector<int64_t>{100, 103}));
  {  // the replay: reads from the target's progress; the side table already holds offset 3's row
    auto c = open();
    auto* q = open_side(*c);
    EXPECT_EQ(c->recorded(app), 3);
    EXPECT_EQ(q->committed(app), 6);  // rows below 6 are in the side table: the flow skips them
    ASSERT_TRUE((*c->writer())->write(*rows({3, 4, 5})).ok());
    ASSERT_TRUE(c->commit(kafka_at(*c, 6)).ok());
  }
  auto c = open();
  auto* q = open_side(*c);
  EXPECT_EQ(table_values(target()), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(table_values(side()), (std::vector<int64_t>{100, 103}));
  EXPECT_EQ(c->recorded(app), 6);
  EXPECT_EQ(q->committed(app), 6);
}

TEST_F(StreamingCommitTest, AResetProgressGoesBackInSideTablesAndTargetAlike) {
  const std::string app = "shop/orders_flow/events/0";
  {
    auto c = open();
    auto* q = open_side(*c);
    ASSERT_TRUE(q->write(*rows({100})).ok());
    ASSERT_TRUE(c->commit(kafka_at(*c, 6)).ok());
  }
  // The topic was re-created: the flow reads it from offset 0 again, and the side table must
  // neither skip the new records below 6 nor keep recording 6.
  auto c = open();
  auto* q = open_side(*c);
  c->reset(app);
  EXPECT_EQ(q->committed(app), -1);
  ASSERT_TRUE(c->commit(kafka_at(*c, 2)).ok());  // no side rows: the side table still records 2
  EXPECT_EQ(c->recorded(app), 2);
  delta::LogStore side_store(side());
  EXPECT_EQ(delta::Snapshot::load(side_store).ValueOrDie()->txn_version(app), 2);
}

TEST_F(StreamingCommitTest, StateIsSavedWithTheProgressAndRestoredOnResume) {
  {
    auto c = open();
    FakeOperatorState op;
    c->set_state(&op);
    ASSERT_TRUE(c->load_state(c->ids().recorded_in(c->snapshot().get())).ok());
    EXPECT_TRUE(op.restored_empty);
    op.watermark = 1000;
    op.open = {7, 8};
    ASSERT_TRUE(c->commit(kafka_at(*c, 3)).ok());
    EXPECT_GT(c->state_file_bytes(), 0);
  }
  EXPECT_TRUE(fs::exists(target() / "_sluice_state" / "orders_flow"));
  auto c = open();
  FakeOperatorState op;
  c->set_state(&op);
  ASSERT_TRUE(c->load_state(c->ids().recorded_in(c->snapshot().get())).ok());
  EXPECT_FALSE(op.restored_empty);
  EXPECT_EQ(op.watermark, 1000);
  EXPECT_EQ(op.open, (std::vector<int64_t>{7, 8}));
}

TEST_F(StreamingCommitTest, UnchangedStateKeepsTheLastSnapshot) {
  {
    auto c = open();
    FakeOperatorState op;
    c->set_state(&op);
    op.watermark = 5;
    op.open = {5};
    ASSERT_TRUE(c->commit(kafka_at(*c, 3)).ok());
    op.unchanged = true;
    ASSERT_TRUE(c->commit(kafka_at(*c, 3)).ok());  // nothing new (a view refresh without input)
  }
  int files = 0;
  for (const auto& e : fs::directory_iterator(target() / "_sluice_state" / "orders_flow")) files += e.path().extension() == ".arrow";
  EXPECT_EQ(files, 1);
  auto c = open();
  FakeOperatorState op;
  c->set_state(&op);
  ASSERT_TRUE(c->load_state(c->ids().recorded_in(c->snapshot().get())).ok());
  EXPECT_EQ(op.open, (std::vector<int64_t>{5}));
}

TEST_F(StreamingCommitTest, TheStateOfACommitThatNeverLandedIsAnOrphan) {
  FakeOperatorState committed_op;
  {
    auto c = open();
    c->set_state(&committed_op);
    committed_op.watermark = 1;
    committed_op.open = {1};
    ASSERT_TRUE(c->commit(kafka_at(*c, 1)).ok());
  }
  // Two writers from version 0: the first lands offset 2; the second saves its state (step 3)
  // labelled offset 5, then loses the race at step 4.
  auto winner = open();
  auto loser = open();
  FakeOperatorState win_op, lose_op;
  winner->set_state(&win_op);
  loser->set_state(&lose_op);
  win_op.watermark = 2;
  win_op.open = {2};
  lose_op.watermark = 5;
  lose_op.open = {5};
  ASSERT_TRUE(winner->commit(kafka_at(*winner, 2)).ok());
  auto lost = loser->commit(kafka_at(*loser, 5));
  ASSERT_FALSE(lost.ok());
  EXPECT_TRUE(delta::is_commit_conflict(lost.status())) << lost.status().ToString();

  auto c = open();
  FakeOperatorState op;
  c->set_state(&op);
  EXPECT_EQ(c->recorded(c->ids().kafka("events", KafkaPartition(0))), 2);
  ASSERT_TRUE(c->load_state(c->ids().recorded_in(c->snapshot().get())).ok());
  EXPECT_EQ(op.watermark, 2);
  EXPECT_EQ(op.open, (std::vector<int64_t>{2}));
  // The orphan (and older snapshots) are gone after the load.
  int files = 0;
  for (const auto& e : fs::directory_iterator(target() / "_sluice_state" / "orders_flow")) files += e.path().extension() == ".arrow";
  EXPECT_EQ(files, 1);
}

TEST_F(StreamingCommitTest, ATargetWithProgressButNoStateIsAnErrorNamingTheFix) {
  {
    auto c = open();
    ASSERT_TRUE(c->commit(kafka_at(*c, 3)).ok());  // no state registered: none saved
  }
  auto c = open();
  FakeOperatorState op;
  c->set_state(&op);
  auto st = c->load_state(c->ids().recorded_in(c->snapshot().get()));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("table 'orders', flow 'orders_flow'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("full refresh"), std::string::npos) << st.message();
}

// Join-like state in two parts: both are saved with each commit, and a part missing is refused.
class TwoPartState : public CommittedState {
 public:
  FakeOperatorState left, right;
  arrow::Result<std::vector<exec::WindowState>> snapshot_state() override {
    ARROW_ASSIGN_OR_RAISE(auto l, left.snapshot_state());
    ARROW_ASSIGN_OR_RAISE(auto r, right.snapshot_state());
    return std::vector<exec::WindowState>{l[0], r[0]};
  }
  arrow::Status restore_state(std::optional<std::vector<exec::WindowState>> parts) override {
    if (!parts) return arrow::Status::OK();
    ARROW_RETURN_NOT_OK(left.restore_state(std::vector<exec::WindowState>{(*parts)[0]}));
    return right.restore_state(std::vector<exec::WindowState>{(*parts)[1]});
  }
};

TEST_F(StreamingCommitTest, StateInPartsRestoresEveryPartOrRefusesAMissingOne) {
  {
    auto c = open();
    TwoPartState op;
    c->set_state(&op, {"left", "right"});
    op.left.open = {1};
    op.right.open = {2, 3};
    ASSERT_TRUE(c->commit(kafka_at(*c, 3)).ok());
  }
  {
    auto c = open();
    TwoPartState op;
    c->set_state(&op, {"left", "right"});
    ASSERT_TRUE(c->load_state(c->ids().recorded_in(c->snapshot().get())).ok());
    EXPECT_EQ(op.left.open, (std::vector<int64_t>{1}));
    EXPECT_EQ(op.right.open, (std::vector<int64_t>{2, 3}));
  }
  fs::remove_all(target() / "_sluice_state" / "orders_flow" / "right");
  auto c = open();
  TwoPartState op;
  c->set_state(&op, {"left", "right"});
  auto st = c->load_state(c->ids().recorded_in(c->snapshot().get()));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("full refresh"), std::string::npos) << st.message();
}

TEST(ColumnChanges, NullabilityAloneIsNoChangeNestedOrNot) {
  auto point = [](bool nullable) {
    return arrow::struct_({arrow::field("x", arrow::int32(), nullable), arrow::field("y", arrow::utf8())});
  };
  const arrow::Schema before({arrow::field("id", arrow::int64(), false), arrow::field("p", point(false)),
                              arrow::field("tags", arrow::list(arrow::field("item", arrow::utf8(), false)))});
  const arrow::Schema after({arrow::field("id", arrow::int64(), true), arrow::field("p", point(true)),
                             arrow::field("tags", arrow::list(arrow::field("item", arrow::utf8(), true)))});
  ASSERT_FALSE(before.Equals(after));
  EXPECT_TRUE(column_changes(before, after).empty());
  // A real change beside it is still seen, named in Delta types.
  const arrow::Schema changed({arrow::field("id", arrow::utf8()), arrow::field("p", point(true)),
                               arrow::field("n", arrow::float64())});
  const auto c = column_changes(before, changed);
  EXPECT_EQ(c.added, (std::vector<std::string>{"n double"}));
  EXPECT_EQ(c.removed, (std::vector<std::string>{"tags"}));
  EXPECT_EQ(c.retyped, (std::vector<std::string>{"id: long -> string"}));
}

TEST_F(StreamingCommitTest, ReloadDropsWhatWasNotCommittedAndSeesAnotherWritersCommit) {
  auto c = open();
  ASSERT_TRUE(c->commit(kafka_at(*c, 1)).ok());
  ASSERT_TRUE((*c->writer())->write(*rows({9})).ok());
  {
    auto other = open();
    ASSERT_TRUE((*other->writer())->write(*rows({4})).ok());
    ASSERT_TRUE(other->commit(kafka_at(*other, 4)).ok());
  }
  ASSERT_TRUE(c->reload().ok());
  EXPECT_FALSE(c->has_writer());
  EXPECT_EQ(c->recorded(c->ids().kafka("events", KafkaPartition(0))), 4);
  ASSERT_TRUE(c->commit(kafka_at(*c, 6)).ok());
  EXPECT_EQ(table_values(target()), (std::vector<int64_t>{4}));
}

}  // namespace
}  // namespace sluice::pipeline
