// Liquid clustering: the Hilbert index (known small cases and the curve's defining properties),
// clustered-table creation (protocol, delta.clustering domain), incremental OPTIMIZE along the
// curve, domain metadata through checkpoints, and a changed CLUSTER BY definition.
#include <arrow/api.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "../temp_dir.h"
#include "sluice/common/text.h"
#include "sluice/delta/checkpoint.h"
#include "sluice/delta/clustering.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_definition.h"
#include "sluice/delta/table_writer.h"
#include "sluice/delta/transaction.h"
#include "sluice/dml/optimize.h"
#include "sluice/dml/zorder.h"

namespace sluice::dml {
namespace {

uint64_t hilbert_of(std::vector<uint32_t> p, int bits) { return static_cast<uint64_t>(hilbert_index(std::move(p), bits)); }

TEST(HilbertIndexTest, FirstOrderTwoDimensionsIsTheUShape) {
  EXPECT_EQ(hilbert_of({0, 0}, 1), 0u);
  EXPECT_EQ(hilbert_of({0, 1}, 1), 1u);
  EXPECT_EQ(hilbert_of({1, 1}, 1), 2u);
  EXPECT_EQ(hilbert_of({1, 0}, 1), 3u);
}

TEST(HilbertIndexTest, SecondOrderTwoDimensionsMatchesTheClassicCurve) {
  // The order-2 curve: the order-1 U over the quadrants, the first and last quadrant's
  // sub-curves turned (Hilbert 1891's figure): (x, y) in visiting order.
  const std::vector<std::pair<uint32_t, uint32_t>> walk = {
      {0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 2}, {0, 3}, {1, 3}, {1, 2},
      {2, 2}, {2, 3}, {3, 3}, {3, 2}, {3, 1}, {2, 1}, {2, 0}, {3, 0}};
  for (size_t i = 0; i < walk.size(); ++i) {
    EXPECT_EQ(hilbert_of({walk[i].first, walk[i].second}, 2), i) << walk[i].first << "," << walk[i].second;
  }
}

TEST(HilbertIndexTest, OneDimensionIsTheIdentity) {
  for (uint32_t v : {0u, 1u, 7u, 1023u}) EXPECT_EQ(hilbert_of({v}, 10), v);
}

// The defining properties, for every cell of small cubes: a bijection onto [0, side^n), starting
// at the origin, each step to a cell at distance 1 (no jumps, unlike Z-order).
void expect_is_a_hilbert_walk(size_t dims, int bits) {
  const uint32_t side = 1u << bits;
  uint64_t cells = 1;
  for (size_t d = 0; d < dims; ++d) cells *= side;
  std::vector<std::vector<uint32_t>> at(cells);
  for (uint64_t c = 0; c < cells; ++c) {
    std::vector<uint32_t> p(dims);
    uint64_t rest = c;
    for (size_t d = 0; d < dims; ++d) {
      p[d] = static_cast<uint32_t>(rest % side);
      rest /= side;
    }
    const uint64_t index = hilbert_of(p, bits);
    ASSERT_LT(index, cells);
    ASSERT_TRUE(at[index].empty()) << "two cells share index " << index;
    at[index] = p;
  }
  EXPECT_EQ(at[0], std::vector<uint32_t>(dims, 0));
  for (uint64_t i = 1; i < cells; ++i) {
    uint32_t distance = 0;
    for (size_t d = 0; d < dims; ++d) {
      distance += at[i][d] > at[i - 1][d] ? at[i][d] - at[i - 1][d] : at[i - 1][d] - at[i][d];
    }
    ASSERT_EQ(distance, 1u) << "step " << i << " of a " << dims << "-d curve of order " << bits;
  }
}

TEST(HilbertIndexTest, EveryStepMovesToANeighbourInTwoThreeAndFourDimensions) {
  expect_is_a_hilbert_walk(2, 4);
  expect_is_a_hilbert_walk(3, 3);
  expect_is_a_hilbert_walk(4, 2);
}

TEST(HilbertIndexTest, CurvePermutationWalksAGridCellByCell) {
  // A 4x4 grid in reverse order; with 4 ranges each value is its own range.
  arrow::Int64Builder x, y;
  for (int64_t i = 15; i >= 0; --i) {
    ASSERT_TRUE(x.Append(i % 4).ok());
    ASSERT_TRUE(y.Append(i / 4).ok());
  }
  auto schema = arrow::schema({arrow::field("x", arrow::int64()), arrow::field("y", arrow::int64())});
  auto table = arrow::Table::Make(schema, {*x.Finish(), *y.Finish()});
  auto order = curve_permutation(*table, {{"x"}, {"y"}}, Curve::kHilbert, 4).ValueOrDie();
  auto xs = std::static_pointer_cast<arrow::Int64Array>(table->column(0)->chunk(0));
  auto ys = std::static_pointer_cast<arrow::Int64Array>(table->column(1)->chunk(0));
  ASSERT_EQ(order.size(), 16u);
  EXPECT_EQ(xs->Value(order[0]) + ys->Value(order[0]), 0);
  for (size_t i = 1; i < order.size(); ++i) {
    EXPECT_EQ(std::abs(xs->Value(order[i]) - xs->Value(order[i - 1])) +
                  std::abs(ys->Value(order[i]) - ys->Value(order[i - 1])),
              1)
        << "step " << i;
  }
}

TEST(HilbertIndexTest, FourColumnsOfTenBitsFitAndStayDistinct) {
  EXPECT_NE(hilbert_index({1023, 1023, 1023, 1023}, 10), hilbert_index({1023, 1023, 1023, 1022}, 10));
  EXPECT_LT(hilbert_index({1023, 1023, 1023, 1023}, 10), static_cast<unsigned __int128>(1) << 40);
}

class ClusteringTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  std::shared_ptr<delta::LogStore> store_ = std::make_shared<delta::LogStore>(dir_.path() / "t");

  static std::shared_ptr<arrow::Schema> schema() {
    return arrow::schema({arrow::field("x", arrow::int64()), arrow::field("y", arrow::int64()),
                          arrow::field("s", arrow::utf8())});
  }

  // One file of the points, appended (the first write creates the table clustered by x, y).
  void write(const std::vector<std::pair<int64_t, int64_t>>& points) {
    arrow::Int64Builder x, y;
    arrow::StringBuilder s;
    for (auto [a, b] : points) {
      ASSERT_TRUE(x.Append(a).ok());
      ASSERT_TRUE(y.Append(b).ok());
      ASSERT_TRUE(s.Append(fmt::format("{}-{}", a, b)).ok());
    }
    auto batch = arrow::RecordBatch::Make(schema(), static_cast<int64_t>(points.size()),
                                          {*x.Finish(), *y.Finish(), *s.Finish()});
    auto snap = delta::load_latest_if_exists(*store_).ValueOrDie();
    delta::WriteOptions options;
    options.clustering_columns = {{"x"}, {"y"}};
    options.configuration = delta::with_defined_properties({});  // as the flows create tables
    auto writer = delta::TableWriter::make(store_, snap, *schema(), options).ValueOrDie();
    ASSERT_TRUE(writer->write(*batch).ok());
    auto txn = writer->finish().ValueOrDie();
    ASSERT_TRUE(txn.commit({}).ok());
  }

  std::string commit_text(int64_t version) {
    std::ifstream in(dir_.path() / "t" / "_delta_log" / fmt::format("{:020}.json", version));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::shared_ptr<const delta::Snapshot> latest() { return delta::Snapshot::load(*store_).ValueOrDie(); }
};

TEST_F(ClusteringTest, ANewClusteredTableHasSparksProtocolAndDomain) {
  write({{1, 1}});
  const std::string text = commit_text(0);
  EXPECT_NE(text.find(R"({"protocol":{"minReaderVersion":1,"minWriterVersion":7,"writerFeatures":["domainMetadata","clustering","invariants","appendOnly"]}})"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"({"domainMetadata":{"configuration":"{\"clusteringColumns\":[[\"x\"],[\"y\"]],\"domainName\":\"delta.clustering\"}","domain":"delta.clustering","removed":false}})"),
            std::string::npos)
      << text;
  auto columns = delta::clustering_columns(*latest(), "t").ValueOrDie();
  ASSERT_TRUE(columns);
  EXPECT_EQ(*columns, (std::vector<delta::ColumnPath>{{"x"}, {"y"}}));
}

TEST_F(ClusteringTest, OptimizeClustersOnlyFilesNotClusteredYetAlongTheHilbertCurve) {
  // A 4x4 grid over four files, in an order that is not the curve's.
  write({{3, 0}, {0, 0}, {2, 2}, {1, 3}});
  write({{0, 3}, {3, 3}, {1, 0}, {2, 1}});
  write({{0, 1}, {1, 1}, {3, 2}, {2, 0}});
  write({{0, 2}, {1, 2}, {2, 3}, {3, 1}});
  auto r = optimize_table(store_, {}).ValueOrDie();
  ASSERT_TRUE(r.committed);
  EXPECT_EQ(r.clustered_by, (std::vector<std::string>{"x", "y"}));
  auto snap = latest();
  ASSERT_EQ(snap->num_files(), 1u);
  EXPECT_EQ(snap->files()[0].clustering_provider, std::optional<std::string>("liquid"));
  const std::string text = commit_text(r.version.value());
  EXPECT_NE(text.find(R"("clusterBy":"[\"x\",\"y\"]")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("ZCUBE_ZORDER_BY":"[\"x\",\"y\"]")"), std::string::npos) << text;
  // Rows in Hilbert order of the range ids: each value's rank among the 16 rows (ties: the
  // first) scaled to 1000 ranges, as delta-spark's range_partition_id: 0, 250, 500, 750 here.
  auto table = delta::scan_table(*store_, *snap).ValueOrDie()->CombineChunksToBatch().ValueOrDie();
  auto xs = std::static_pointer_cast<arrow::Int64Array>(table->GetColumnByName("x"));
  auto ys = std::static_pointer_cast<arrow::Int64Array>(table->GetColumnByName("y"));
  ASSERT_EQ(table->num_rows(), 16);
  auto id = [](int64_t v) { return static_cast<uint32_t>(v * 250); };
  for (int64_t i = 1; i < 16; ++i) {
    EXPECT_LT(hilbert_index({id(xs->Value(i - 1)), id(ys->Value(i - 1))}, 10),
              hilbert_index({id(xs->Value(i)), id(ys->Value(i))}, 10))
        << "row " << i;
  }
  // Incremental: a new file is clustered on its own; a clustered file whose ZCUBE reaches the
  // target size stays (a target of 1 byte makes every ZCUBE stable).
  const std::string clustered_path = snap->files()[0].path;
  write({{5, 5}, {4, 4}});
  OptimizeOptions stable;
  stable.target_file_size = 1;
  auto again = optimize_table(store_, stable).ValueOrDie();
  ASSERT_TRUE(again.committed);
  EXPECT_EQ(again.files_considered, 2);
  EXPECT_EQ(again.files_skipped, 1);
  std::set<std::string> paths;
  for (const auto& f : latest()->files()) paths.insert(f.path);
  EXPECT_TRUE(paths.count(clustered_path));
  // Nothing left to cluster: no commit.
  auto idle = optimize_table(store_, stable).ValueOrDie();
  EXPECT_FALSE(idle.committed);
  // At the default target (1 GiB) both ZCUBEs are small (unstable, delta-spark's minCubeSize):
  // they are clustered again together, so small clustered files merge instead of piling up.
  auto merged = optimize_table(store_, {}).ValueOrDie();
  ASSERT_TRUE(merged.committed);
  EXPECT_EQ(merged.files_skipped, 0);
  ASSERT_EQ(latest()->num_files(), 1u);
  EXPECT_EQ(delta::scan_table(*store_, *latest()).ValueOrDie()->num_rows(), 18);
  // One ZCUBE alone is left as it is: rewriting it would change nothing.
  EXPECT_FALSE(optimize_table(store_, {}).ValueOrDie().committed);
}

TEST_F(ClusteringTest, AutoCompactionOfAClusteredTableTakesBoundedBinsAndEnds) {
  // Auto compaction's selection (min_file_size, min_small_files, max_input_bytes): every round
  // reads at most about max_input_bytes, and rounds end once no two small units are left.
  for (int64_t i = 0; i < 8; ++i) write({{i, 7 - i}, {7 - i, i}});
  int64_t largest = 0;
  for (const auto& f : latest()->files()) largest = std::max(largest, f.size);
  OptimizeOptions o;
  o.target_file_size = 1ll << 30;
  o.min_file_size = 1ll << 20;  // every file here is small
  o.min_small_files = 2;
  o.max_input_bytes = 2 * largest;
  o.automatic = true;
  // Fewer small files than min_small_files: nothing to do.
  OptimizeOptions few = o;
  few.min_small_files = 9;
  EXPECT_FALSE(optimize_table(store_, few).ValueOrDie().committed);
  int rounds = 0;
  while (true) {
    auto r = optimize_table(store_, o).ValueOrDie();
    if (!r.committed) break;
    ASSERT_LT(++rounds, 20) << "auto compaction of a clustered table does not end";
    EXPECT_EQ(r.batches, 1);
    const auto removed = parse_int64(r.metrics["numRemovedBytes"].get<std::string>(), "bytes").ValueOrDie();
    EXPECT_LE(removed, o.max_input_bytes) << "round " << rounds;
  }
  EXPECT_GE(rounds, 2);  // bounded: one bin of all eight files would have been one round
  EXPECT_EQ(delta::scan_table(*store_, *latest()).ValueOrDie()->num_rows(), 16);
}

TEST_F(ClusteringTest, StoppingInsideTheRewriteCommitsNothingAndLeavesNoFile) {
  write({{1, 1}, {2, 2}});
  write({{3, 3}, {0, 0}});
  const auto version = latest()->version();
  auto count_files = [&] {
    int64_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path() / "t")) n += e.is_regular_file();
    return n;
  };
  const int64_t files_before = count_files();
  int asked = 0;
  OptimizeOptions o;
  o.cancelled = [&] { return ++asked > 1; };  // the first question is before the bin
  auto r = optimize_table(store_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCancelled()) << r.status().ToString();
  EXPECT_GT(asked, 1);
  EXPECT_EQ(latest()->version(), version);
  EXPECT_EQ(count_files(), files_before);
}

TEST_F(ClusteringTest, ZOrderAndWhereAreRefusedOnAClusteredTable) {
  write({{1, 1}});
  OptimizeOptions z;
  z.zorder_by = {"x"};
  auto r = optimize_table(store_, z);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("clustered table"), std::string::npos) << r.status().message();
  OptimizeOptions w;
  w.where = "x = 1";
  r = optimize_table(store_, w);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no partitions"), std::string::npos) << r.status().message();
}

TEST_F(ClusteringTest, DomainMetadataAndClusteringProviderSurviveACheckpoint) {
  write({{1, 1}});
  write({{2, 2}});
  ASSERT_TRUE(optimize_table(store_, {}).ValueOrDie().committed);
  auto before = latest();
  ASSERT_TRUE(delta::write_checkpoint(*store_, *before).ok());
  // Replay from the checkpoint alone: remove the JSON commits it covers.
  for (int64_t v = 0; v <= before->version().value(); ++v) {
    std::filesystem::remove(dir_.path() / "t" / "_delta_log" / fmt::format("{:020}.json", v));
  }
  auto after = latest();
  ASSERT_EQ(after->checkpoint_version(), before->version());
  EXPECT_EQ(after->domains(), before->domains());
  ASSERT_EQ(after->num_files(), 1u);
  EXPECT_EQ(after->files()[0].clustering_provider, std::optional<std::string>("liquid"));
  EXPECT_EQ(after->files()[0].tags, before->files()[0].tags);
}

TEST_F(ClusteringTest, AChangedDefinitionCommitsANewDomainAsSparksClusterBy) {
  write({{1, 1}});
  delta::TableDefinition d;
  d.schema = schema();
  d.clustering_columns = {{"s"}};
  auto done = delta::apply_table_definition(store_, d, "t");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  ASSERT_EQ(done->size(), 1u);
  EXPECT_EQ((*done)[0].operation, "CLUSTER BY");
  const std::string text = commit_text(1);
  EXPECT_NE(text.find(R"("operationParameters":{"newClusteringColumns":"s","oldClusteringColumns":"x,y"})"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("metaData"), std::string::npos) << text;
  EXPECT_EQ(*delta::clustering_columns(*latest(), "t").ValueOrDie(), (std::vector<delta::ColumnPath>{{"s"}}));
  // Without CLUSTER BY: Spark's CLUSTER BY NONE (the table keeps the feature, clustered by nothing).
  d.clustering_columns.clear();
  ASSERT_TRUE(delta::apply_table_definition(store_, d, "t").ok());
  EXPECT_TRUE(delta::clustering_columns(*latest(), "t").ValueOrDie()->empty());
  // Applying it again changes nothing.
  EXPECT_TRUE(delta::apply_table_definition(store_, d, "t").ValueOrDie().empty());
}

TEST_F(ClusteringTest, ClusterByOnATableCreatedWithoutItIsRefused) {
  auto writer = delta::TableWriter::make(store_, nullptr, *schema(), {}).ValueOrDie();
  ASSERT_TRUE(writer->finish().ValueOrDie().commit({}).ok());
  delta::TableDefinition d;
  d.schema = schema();
  d.clustering_columns = {{"x"}};
  auto done = delta::apply_table_definition(store_, d, "t");
  ASSERT_FALSE(done.ok());
  EXPECT_NE(done.status().message().find("created without CLUSTER BY"), std::string::npos)
      << done.status().message();
}

TEST(ClusteringColumnTest, RefusesWhatDeltaSparkRefuses) {
  arrow::FieldVector fields = {arrow::field("id", arrow::int64()), arrow::field("flag", arrow::boolean()),
                               arrow::field("blob", arrow::binary()),
                               arrow::field("tags", arrow::list(arrow::utf8())),
                               arrow::field("st", arrow::struct_({arrow::field("n", arrow::int32())}))};
  for (int i = 0; i < 30; ++i) fields.push_back(arrow::field(fmt::format("c{}", i), arrow::int32()));
  const auto s = arrow::schema(fields);
  EXPECT_EQ(delta::check_clustering_column(*s, {"ID"}).ValueOrDie(), delta::ColumnPath{"id"});
  EXPECT_EQ(delta::check_clustering_column(*s, {"st", "n"}).ValueOrDie(), (delta::ColumnPath{"st", "n"}));
  auto message = [&](const delta::ColumnPath& p) { return delta::check_clustering_column(*s, p).status().message(); };
  EXPECT_NE(message({"nope"}).find("not a column"), std::string::npos);
  for (const char* stats_less : {"flag", "blob", "tags", "st"}) {
    EXPECT_NE(message({stats_less}).find("no min/max statistics"), std::string::npos) << stats_less;
  }
  // Leaves: id flag blob tags st.n c0..c29 -> c26 is leaf 32 (kept), c27 leaf 33 (no stats).
  EXPECT_TRUE(delta::check_clustering_column(*s, {"c26"}).ok());
  EXPECT_NE(message({"c27"}).find("first 32"), std::string::npos) << message({"c27"});
}

}  // namespace
}  // namespace sluice::dml
