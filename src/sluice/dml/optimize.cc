// OPTIMIZE [WHERE partition predicate] [ZORDER BY cols], as delta-spark's OptimizeExecutor.
#include "sluice/dml/optimize.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/io/memory.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <set>

#include "sluice/common/failpoint.h"
#include "sluice/common/status.h"
#include "sluice/common/ids.h"
#include "sluice/common/text.h"
#include "sluice/delta/clustering.h"
#include "sluice/delta/data_file_writer.h"
#include "sluice/delta/deletion_vector.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/schema.h"
#include "sluice/delta/snapshot.h"
#include "sluice/delta/stats.h"
#include "sluice/delta/table_features.h"
#include "sluice/delta/table_writer.h"
#include "sluice/dml/delete_update.h"
#include "sluice/dml/table_rewrite.h"
#include "sluice/dml/zorder.h"
#include "sluice/exec/constraint_checker.h"
#include "sluice/exec/expression_binder.h"
#include "sluice/sql/parser.h"
#include "sluice/storage/object_store.h"

namespace sluice::dml {

namespace cp = arrow::compute;
using nlohmann::json;

namespace {
// The tags delta-spark puts on the files one clustering OPTIMIZE writes: the run's id and the
// columns (a JSON array of names) it clustered by.
constexpr const char* kZCubeIdTag = "ZCUBE_ID";
constexpr const char* kZCubeZOrderByTag = "ZCUBE_ZORDER_BY";
}  // namespace

arrow::Result<OptimizeFileSizes> optimize_file_sizes(const delta::Metadata& metadata,
                                                     const std::string& table) {
  OptimizeFileSizes sizes;
  auto it = metadata.configuration.find("delta.targetFileSize");
  if (it == metadata.configuration.end()) return sizes;
  std::string text = to_lower(it->second);
  std::erase_if(text, [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  const std::string unit = text.substr(digits);
  static const std::map<std::string, int64_t> kUnits = {
      {"", 1}, {"b", 1}, {"k", 1ll << 10}, {"kb", 1ll << 10}, {"m", 1ll << 20},
      {"mb", 1ll << 20}, {"g", 1ll << 30}, {"gb", 1ll << 30}};
  auto multiplier = kUnits.find(unit);
  // Only digits reach the parser: it can fail here by overflow alone (handled below).
  const auto number = parse_int64(std::string_view(text).substr(0, digits), "delta.targetFileSize");
  if (digits == 0 || multiplier == kUnits.end() || (number.ok() && *number == 0)) {
    return invalid(
        "table {}: delta.targetFileSize = '{}' is not a file size; set it to a number of bytes "
        "such as 134217728 or '128mb' (ALTER TABLE ... SET TBLPROPERTIES)",
        table, it->second);
  }
  if (!number.ok() || *number > std::numeric_limits<int64_t>::max() / multiplier->second) {
    return invalid(
        "table {}: delta.targetFileSize = '{}' is larger than a file size can be (at most {} bytes); set it "
        "to a number of bytes such as 134217728 or '128mb' (ALTER TABLE ... SET TBLPROPERTIES)",
        table, it->second, std::numeric_limits<int64_t>::max());
  }
  sizes.min_file_size = sizes.max_file_size = *number * multiplier->second;
  return sizes;
}

namespace {

// The columns an expression names (their last part).
void referenced_columns(const sql::Expr& e, std::vector<std::string>& out) {
  if (e.kind == sql::ExprKind::kColumn && !e.parts.empty()) out.push_back(e.parts.back());
  for (const auto& arg : e.args) {
    if (arg) referenced_columns(*arg, out);
  }
}

// The table's field named `name` (case-insensitively), or null.
std::shared_ptr<arrow::Field> table_field(const arrow::Schema& schema, const std::string& name) {
  for (const auto& f : schema.fields()) {
    if (to_lower(f->name()) == to_lower(name)) return f;
  }
  return nullptr;
}

bool is_partition_column(const delta::Metadata& metadata, const std::string& name) {
  return std::any_of(metadata.partition_columns.begin(), metadata.partition_columns.end(),
                     [&](const std::string& p) { return to_lower(p) == to_lower(name); });
}

// The live files the partition predicate selects (all of them without one), and the predicate
// as Spark records it (operationParameters.predicate).
struct Candidates {
  std::vector<delta::Add> files;
  std::string predicate = "[]";
};

arrow::Result<Candidates> candidate_files(const DmlTarget& target, const std::string& where) {
  Candidates out;
  auto files = target.snapshot->files();
  if (where.empty()) {
    out.files = std::move(files);
    return out;
  }
  const sql::SourceFile source{"--where", where};
  ARROW_ASSIGN_OR_RAISE(auto condition, sql::parse_expression(source));
  const auto& metadata = target.snapshot->metadata();
  const auto& schema = *target.snapshot->schema();
  std::vector<std::string> columns;
  referenced_columns(*condition, columns);
  for (const auto& c : columns) {
    if (table_field(schema, c) && !is_partition_column(metadata, c)) {
      // Spark's DeltaAnalysisException for OPTIMIZE ... WHERE on a data column.
      return invalid(
          "--where '{}' on table {}: predicate references non-partition column '{}'. Only the "
          "partition columns may be referenced: [{}]. To compact by other columns, use "
          "--zorder-by",
          where, target.name, c, fmt::join(metadata.partition_columns, ", "));
    }
  }
  arrow::FieldVector fields;
  for (const auto& name : metadata.partition_columns) {
    if (auto f = schema.GetFieldByName(name)) fields.push_back(f);
  }
  exec::ExpressionBinder binder(source, arrow::schema(fields));
  ARROW_ASSIGN_OR_RAISE(auto bound, binder.bind(*condition));
  if (bound.type->id() != arrow::Type::BOOL && bound.type->id() != arrow::Type::NA) {
    return invalid("--where '{}' on table {}: the condition must be BOOLEAN, but it is {}", where,
                   target.name, bound.type->ToString());
  }
  for (auto& file : files) {
    ARROW_ASSIGN_OR_RAISE(auto row, partition_row(target, file));
    ARROW_ASSIGN_OR_RAISE(auto mask, exec::evaluate(bound, *row));
    const bool selected = mask->type_id() == arrow::Type::BOOL && mask->IsValid(0) &&
                          static_cast<const arrow::BooleanArray&>(*mask).Value(0);
    if (selected) out.files.push_back(std::move(file));
  }
  out.predicate = json::array({condition_text(*condition)}).dump();
  return out;
}

// The Z-order columns as the table names them; refused as Spark refuses them: unknown ones,
// partition columns, and columns whose files keep no min/max stats (Z-ordering them would not
// let a reader skip anything).
arrow::Result<std::vector<std::string>> zorder_columns(const DmlTarget& target,
                                                       const std::vector<std::string>& requested) {
  const auto& metadata = target.snapshot->metadata();
  const auto& schema = *target.snapshot->schema();
  if (requested.size() > kMaxZOrderColumns) {
    return invalid("--zorder-by on table {}: at most {} columns, not {}", target.name,
                   kMaxZOrderColumns, requested.size());
  }
  std::vector<std::string> out;
  for (const auto& name : requested) {
    auto field = table_field(schema, name);
    if (!field) {
      std::vector<std::string> names;
      for (const auto& f : schema.fields()) names.push_back(f->name());
      return invalid("--zorder-by on table {}: column '{}' does not exist; the columns are [{}]",
                     target.name, name, fmt::join(names, ", "));
    }
    if (is_partition_column(metadata, field->name())) {
      return invalid(
          "--zorder-by on table {}: {} is a partition column. Z-Ordering can only be performed "
          "on data columns (use --where to choose partitions)",
          target.name, field->name());
    }
    if (!delta::has_min_max(*field->type())) {
      return invalid(
          "--zorder-by on table {}: Z-Ordering on [{}] will be ineffective, because Delta keeps no "
          "min/max stats for a {} column; Z-order by columns of number, string, date or timestamp "
          "types",
          target.name, field->name(), delta::delta_type_name(*field->type()));
    }
    if (std::find(out.begin(), out.end(), field->name()) != out.end()) {
      return invalid("--zorder-by on table {}: column {} is named twice", target.name, field->name());
    }
    out.push_back(field->name());
  }
  return out;
}

bool many_rows_deleted(const delta::Add& file) {
  if (!file.deletion_vector) return false;
  const int64_t live = delta::live_records(file);
  if (live < 0) return true;  // no numRecords: rewrite, so the new file has stats (as Spark)
  const int64_t physical = live + file.deletion_vector->cardinality;
  return physical > 0 && static_cast<double>(file.deletion_vector->cardinality) /
                                 static_cast<double>(physical) > kOptimizeMaxDeletedRowsRatio;
}

// How bins_of selects files.
struct BinSelection {
  bool whole_partitions = false;  // Z-order: every file of each partition, in one bin
  int64_t min_small_files = 0;    // auto compaction: partitions with fewer small files are left
  int64_t max_input_bytes = 0;    // auto compaction: bins up to this much input (0: all)
};

// Groups of files of one partition, each rewritten together (OptimizeExecutor's bins): for
// compaction, the small files (and ones with many deleted rows) by ascending size, up to
// max_file_size a bin, bins of one file without a deletion vector left alone; for Z-order, every
// file of the partition in one bin. Auto compaction takes the partitions with the most small
// files first, as Databricks' does.
std::vector<std::vector<delta::Add>> bins_of(std::vector<delta::Add> files,
                                             const OptimizeFileSizes& sizes, const BinSelection& select) {
  std::map<delta::PartitionValues, std::vector<delta::Add>> partitions;
  for (auto& f : files) {
    if (select.whole_partitions || f.size < sizes.min_file_size || many_rows_deleted(f)) {
      partitions[f.partition_values].push_back(std::move(f));
    }
  }
  std::vector<std::vector<delta::Add>*> order;
  for (auto& [values, in_partition] : partitions) {
    if (select.min_small_files > 0 && static_cast<int64_t>(in_partition.size()) < select.min_small_files) continue;
    order.push_back(&in_partition);
  }
  if (select.min_small_files > 0) {
    std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) { return a->size() > b->size(); });
  }
  std::vector<std::vector<delta::Add>> bins;
  for (auto* partition : order) {
    auto& in_partition = *partition;
    if (select.whole_partitions) {
      bins.push_back(std::move(in_partition));
      continue;
    }
    std::stable_sort(in_partition.begin(), in_partition.end(),
                     [](const delta::Add& a, const delta::Add& b) { return a.size < b.size; });
    std::vector<delta::Add> bin;
    int64_t bin_size = 0;
    auto close_bin = [&] {
      if (bin.size() > 1 || (bin.size() == 1 && bin[0].deletion_vector)) bins.push_back(bin);
      bin.clear();
      bin_size = 0;
    };
    for (auto& f : in_partition) {
      if (!bin.empty() && bin_size + f.size > sizes.max_file_size) close_bin();
      bin_size += f.size;
      bin.push_back(std::move(f));
    }
    close_bin();
  }
  if (select.max_input_bytes <= 0) return bins;
  std::vector<std::vector<delta::Add>> bounded;  // the first bins, at least one
  int64_t taken = 0;
  for (auto& bin : bins) {
    int64_t bytes = 0;
    for (const auto& f : bin) bytes += f.size;
    if (!bounded.empty() && taken + bytes > select.max_input_bytes) break;
    taken += bytes;
    bounded.push_back(std::move(bin));
  }
  return bounded;
}

// How a bin's rows are ordered: along `curve` over the columns at `paths`, or as read (no paths).
struct RowOrder {
  std::vector<std::vector<std::string>> paths;
  Curve curve = Curve::kZOrder;
};

// The fewest rows OPTIMIZE puts in a file it cuts by rows (the bin's last file may hold fewer).
constexpr int64_t kMinRowsPerCutFile = 100;

// The rows a file of about `target` bytes holds, from the bin's own bytes per row (physical rows:
// numRecords plus what a deletion vector hides); 0 (bytes alone decide) when a file records no
// numRecords. Rounded up, so a bin of at most `target` bytes stays one file; a sorted bin larger
// than that (Z-order, clustering) is cut into files of about the target, its order running on
// from one file into the next. The Parquet writer knows a file's bytes only per finished row
// group, so bytes alone would let a file run past a small target by a whole row group.
int64_t rows_per_target_file(const std::vector<delta::Add>& bin, int64_t target) {
  // Sums in 128 bits: a log's numRecords and sizes are read as written, and hostile or wrong ones
  // must not overflow; a negative one means no estimate.
  __int128 bytes = 0, rows = 0;
  for (const auto& f : bin) {
    const int64_t live = delta::live_records(f);
    if (live < 0 || f.size < 0) return 0;
    rows += static_cast<__int128>(live) + (f.deletion_vector ? f.deletion_vector->cardinality : 0);
    bytes += f.size;
  }
  if (rows <= 0 || bytes <= 0 || target <= 0) return 0;
  const __int128 wanted = (static_cast<__int128>(target) * rows + bytes - 1) / bytes;
  // At least kMinRowsPerCutFile: a target of a few bytes (or stats claiming far fewer rows than
  // the files hold) would otherwise write a file per row (40,000 files for 40,000 rows).
  return static_cast<int64_t>(std::clamp<__int128>(wanted, kMinRowsPerCutFile, std::numeric_limits<int64_t>::max()));
}

// An output stream that keeps only how many bytes went through it: the sizing sample's file is
// not kept (a BufferOutputStream held up to one target file, 1 GiB by default, in memory); the
// Parquet writer itself still holds at most one row group's pages before writing them here.
// Parquet's writer needs only Write, Tell and Close of its sink.
class CountingOutputStream final : public arrow::io::OutputStream {
 public:
  arrow::Status Close() override {
    closed_ = true;
    return arrow::Status::OK();
  }
  bool closed() const override { return closed_; }
  arrow::Result<int64_t> Tell() const override { return bytes_; }
  arrow::Status Write(const void*, int64_t nbytes) override {
    if (closed_) return arrow::Status::Invalid("write to a closed counting stream");
    bytes_ += nbytes;
    return arrow::Status::OK();
  }
  using arrow::io::OutputStream::Write;

 private:
  int64_t bytes_ = 0;
  bool closed_ = false;
};

// A store that keeps nothing: the sizing sample below is encoded by the data files' own writer
// (the same Parquet settings) into a stream that counts its bytes and drops them. Only what
// DataFileWriter calls is served.
class SizingStore final : public storage::ObjectStore {
 public:
  const char* scheme() const override { return "sizing"; }
  std::string display(const std::string& path) const override { return "(size estimate) " + path; }
  arrow::Result<std::vector<storage::ObjectInfo>> list(const std::string&, const std::string&) const override {
    return arrow::Status::NotImplemented("sizing store");
  }
  arrow::Result<std::optional<storage::ObjectInfo>> head(const std::string&) const override {
    return arrow::Status::NotImplemented("sizing store");
  }
  arrow::Result<std::string> read(const std::string&) const override {
    return arrow::Status::NotImplemented("sizing store");
  }
  arrow::Result<std::shared_ptr<arrow::io::RandomAccessFile>> open_input(const std::string&) const override {
    return arrow::Status::NotImplemented("sizing store");
  }
  arrow::Result<std::shared_ptr<arrow::io::OutputStream>> open_output(const std::string&) override {
    return std::make_shared<CountingOutputStream>();
  }
  arrow::Status finish_output(const std::string&, arrow::io::OutputStream& out) override { return out.Close(); }
  arrow::Result<storage::PutResult> put_if_absent(const std::string&, const std::string&) override {
    return arrow::Status::NotImplemented("sizing store");
  }
  arrow::Status put(const std::string&, const std::string&) override {
    return arrow::Status::NotImplemented("sizing store");
  }
  arrow::Status remove(const std::string&) override { return arrow::Status::OK(); }
};

}  // namespace

std::shared_ptr<storage::ObjectStore> sizing_store() { return std::make_shared<SizingStore>(); }

namespace {

// The most rows the sizing sample encodes (its input rows are a slice of the sorted bin; the
// writer holds one row group of them encoded until it is flushed, then only counts).
constexpr int64_t kMaxSizingRows = 256 * 1024;

// The rows a file of about `target` bytes holds, measured on the rows themselves: the first rows
// of `rows` (as many as `estimate` says one file takes, at most kMaxSizingRows) encoded as a data
// file is, in memory. The inputs' bytes per row (rows_per_target_file) overstate it when they are
// many small files (a footer, page headers and a dictionary per column chunk each) and when the
// sort makes the rows compress better; the sample has the output's own overhead and order.
arrow::Result<int64_t> measured_rows_per_file(const arrow::Table& rows, const std::vector<std::string>& partition_columns,
                                              const delta::DataFileOptions& file_options, int64_t estimate,
                                              int64_t target) {
  const int64_t sample_rows = std::min({rows.num_rows(), std::max(estimate, kMinRowsPerCutFile), kMaxSizingRows});
  std::shared_ptr<arrow::Table> sample = rows.Slice(0, sample_rows);
  // Data files hold no partition columns (their values are in the log).
  for (const auto& column : partition_columns) {
    const int i = sample->schema()->GetFieldIndex(column);
    if (i < 0) continue;
    ARROW_ASSIGN_OR_RAISE(sample, sample->RemoveColumn(i));
  }
  delta::DataFileOptions options = file_options;
  options.max_rows_per_file = 0;
  options.target_file_bytes = std::numeric_limits<int64_t>::max();
  ARROW_ASSIGN_OR_RAISE(auto writer, delta::DataFileWriter::make(sizing_store(), "sizing", "",
                                                                 sample->schema(), options));
  arrow::TableBatchReader reader(*sample);
  reader.set_chunksize(64 * 1024);
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
    if (!batch) break;
    ARROW_RETURN_NOT_OK(writer->write(*batch));
  }
  ARROW_ASSIGN_OR_RAISE(auto add, writer->close());
  if (add.size <= 0) return estimate;
  const __int128 wanted = (static_cast<__int128>(target) * sample_rows + add.size - 1) / add.size;
  return static_cast<int64_t>(std::clamp<__int128>(wanted, kMinRowsPerCutFile, std::numeric_limits<int64_t>::max()));
}

// Rewrites one bin: its rows (deletion vectors applied) into new files of the target size,
// along the curve of `order` when it has columns.
arrow::Result<std::vector<delta::Add>> rewrite_bin(const DmlTarget& target,
                                                   const std::vector<delta::Add>& bin,
                                                   const RowOrder& order_by,
                                                   const OptimizeFileSizes& sizes,
                                                   const std::function<bool()>& cancelled,
                                                   int64_t& rows) {
  auto stop = [&]() -> arrow::Status {
    if (cancelled && cancelled()) return arrow::Status::Cancelled("the rewrite was stopped");
    return arrow::Status::OK();
  };
  const bool sorted_output = !order_by.paths.empty();
  delta::WriteOptions options;
  options.constraints = exec::sql_constraint_compiler();
  options.file.target_file_bytes = sizes.max_file_size;
  options.file.row_group_bytes = std::min(options.file.row_group_bytes, sizes.max_file_size);
  options.file.max_rows_per_file = rows_per_target_file(bin, sizes.max_file_size);
  options.file.parallel_files = 1;  // one file at a time keeps the rows' order in the files
  int64_t bin_bytes = 0;
  for (const auto& f : bin) bin_bytes += std::max<int64_t>(f.size, 0);
  // A sorted bin is cut by rows measured on its sorted rows (measured_rows_per_file), so its
  // writer opens once they are known; a compaction bin (at most a target of input) is one file.
  std::unique_ptr<delta::TableWriter> writer;
  auto open_writer = [&]() -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(writer, delta::TableWriter::make(target.store, target.snapshot, *target.snapshot->schema(),
                                                           options));
    return arrow::Status::OK();
  };
  if (!sorted_output) ARROW_RETURN_NOT_OK(open_writer());
  auto written = [&]() -> arrow::Status {
    arrow::RecordBatchVector batches;
    for (const auto& file : bin) {
      ARROW_RETURN_NOT_OK(stop());
      ARROW_ASSIGN_OR_RAISE(auto reader, delta::open_data_file(*target.store, *target.snapshot, file));
      while (true) {
        ARROW_RETURN_NOT_OK(stop());
        std::shared_ptr<arrow::RecordBatch> batch;
        ARROW_RETURN_NOT_OK(reader->ReadNext(&batch));
        if (!batch) break;
        rows += batch->num_rows();
        if (!sorted_output) {
          ARROW_RETURN_NOT_OK(writer->write(*batch));
        } else {
          batches.push_back(std::move(batch));
        }
      }
    }
    if (!sorted_output) return arrow::Status::OK();
    // The whole partition is sorted in memory (Spark range-partitions it over its executors).
    ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(target.snapshot->schema(), batches));
    batches.clear();
    ARROW_RETURN_NOT_OK(stop());
    ARROW_ASSIGN_OR_RAISE(auto order, curve_permutation(*table, order_by.paths, order_by.curve));
    arrow::Int64Builder indices;
    ARROW_RETURN_NOT_OK(indices.AppendValues(order));
    ARROW_ASSIGN_OR_RAISE(auto index_array, indices.Finish());
    ARROW_ASSIGN_OR_RAISE(auto sorted, cp::Take(table, index_array));
    table.reset();
    if (bin_bytes > sizes.max_file_size && sorted.table()->num_rows() > kMinRowsPerCutFile) {
      ARROW_ASSIGN_OR_RAISE(options.file.max_rows_per_file,
                            measured_rows_per_file(*sorted.table(), target.snapshot->metadata().partition_columns,
                                                   options.file, options.file.max_rows_per_file,
                                                   sizes.max_file_size));
    }
    ARROW_RETURN_NOT_OK(open_writer());
    arrow::TableBatchReader reader(*sorted.table());
    reader.set_chunksize(64 * 1024);
    while (true) {
      std::shared_ptr<arrow::RecordBatch> batch;
      ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
      if (!batch) break;
      ARROW_RETURN_NOT_OK(stop());
      ARROW_RETURN_NOT_OK(writer->write(*batch));
    }
    return arrow::Status::OK();
  }();
  if (!written.ok()) {
    if (writer) writer->abort();
    return written;
  }
  ARROW_ASSIGN_OR_RAISE(auto txn, writer->finish());
  return txn.adds();
}

// Whether `file` was clustered (clusteringProvider set) by `columns` (the ZCUBE_ZORDER_BY
// text). Files appended since, and files clustered by columns the table no longer has, are not.
bool clustered_by(const delta::Add& file, const std::string& columns) {
  if (!file.clustering_provider) return false;
  if (!file.tags) return true;  // clustered by an engine that records no ZCUBE: keep it
  auto it = file.tags->find(kZCubeZOrderByTag);
  return it == file.tags->end() || it->second == columns;
}

// The ZCUBE (one clustering run's output) a clustered file belongs to; "" when it records none.
std::string zcube_of(const delta::Add& file) {
  if (!file.tags) return "";
  auto it = file.tags->find(kZCubeIdTag);
  return it == file.tags->end() ? "" : it->second;
}

// What one clustering OPTIMIZE rewrites, as delta-spark's incremental clustering: the files not
// clustered by the current columns, each a unit, and the ZCUBEs smaller than `unstable_below`
// bytes (delta-spark's minCubeSize: an unstable cube is clustered again with the new files, so
// small clustered files merge instead of piling up), each a unit of its files. With
// `only_small` (auto compaction), only files below that size are taken. Units by ascending size
// form bins of up to `max_input_bytes` (0: one bin of all); a bin that is one ZCUBE alone is
// left as it is (rewriting it would change nothing). At most `max_bins` bins (0: all), so one
// compaction's input, and the rows it sorts in memory, stay bounded.
std::vector<std::vector<delta::Add>> clustering_bins(std::vector<delta::Add> files, const std::string& columns,
                                                     int64_t unstable_below, bool only_small, int64_t min_files,
                                                     int64_t max_input_bytes, size_t max_bins) {
  struct Unit {
    std::vector<delta::Add> files;
    int64_t bytes = 0;
    bool zcube = false;
  };
  std::map<std::string, Unit> cubes;
  std::vector<Unit> units;
  for (auto& f : files) {
    if (only_small && f.size >= unstable_below) continue;
    if (clustered_by(f, columns)) {
      const std::string id = zcube_of(f);
      if (id.empty()) continue;  // clustered by an engine that records no ZCUBE: kept
      auto& cube = cubes[id];
      cube.zcube = true;
      cube.bytes += f.size;
      cube.files.push_back(std::move(f));
    } else {
      Unit u;
      u.bytes = f.size;
      u.files.push_back(std::move(f));
      units.push_back(std::move(u));
    }
  }
  for (auto& [id, cube] : cubes) {
    if (cube.bytes < unstable_below) units.push_back(std::move(cube));
  }
  int64_t count = 0;
  for (const auto& u : units) count += static_cast<int64_t>(u.files.size());
  std::vector<std::vector<delta::Add>> bins;
  if (count == 0 || (min_files > 0 && count < min_files)) return bins;
  std::stable_sort(units.begin(), units.end(), [](const Unit& a, const Unit& b) { return a.bytes < b.bytes; });
  std::vector<delta::Add> bin;
  int64_t bin_bytes = 0;
  size_t bin_units = 0;
  bool bin_zcube = false;
  auto close_bin = [&] {
    if (!bin.empty() && !(bin_units == 1 && bin_zcube)) bins.push_back(std::move(bin));
    bin.clear();
    bin_bytes = 0;
    bin_units = 0;
  };
  for (auto& u : units) {
    if (max_bins > 0 && bins.size() >= max_bins) break;
    if (max_input_bytes > 0 && bin_units > 0 && bin_bytes + u.bytes > max_input_bytes) close_bin();
    if (max_bins > 0 && bins.size() >= max_bins) break;
    bin_bytes += u.bytes;
    ++bin_units;
    bin_zcube = u.zcube;
    for (auto& f : u.files) bin.push_back(std::move(f));
  }
  if (max_bins == 0 || bins.size() < max_bins) close_bin();
  return bins;
}

// delta-spark 4.4's OPTIMIZE operationMetrics: sizes of the added files (min, percentiles, max),
// files and bytes added and removed, and the deletion vectors the rewrite dropped.
json optimize_metrics(const std::vector<delta::Add>& added, const std::vector<delta::Add>& removed) {
  std::vector<int64_t> sizes;
  int64_t added_bytes = 0, removed_bytes = 0, dvs = 0;
  for (const auto& a : added) {
    sizes.push_back(a.size);
    added_bytes += a.size;
  }
  for (const auto& r : removed) {
    removed_bytes += r.size;
    dvs += r.deletion_vector.has_value();
  }
  std::sort(sizes.begin(), sizes.end());
  const size_t n = sizes.size();
  auto at = [&](size_t i) { return std::to_string(n == 0 ? 0 : sizes[i]); };
  return {{"numAddedFiles", std::to_string(n)},
          {"numRemovedFiles", std::to_string(removed.size())},
          {"numAddedBytes", std::to_string(added_bytes)},
          {"numRemovedBytes", std::to_string(removed_bytes)},
          {"minFileSize", at(0)},
          {"p25FileSize", at(n / 4)},
          {"p50FileSize", at(n / 2)},
          {"p75FileSize", at(n * 3 / 4)},
          {"maxFileSize", at(n == 0 ? 0 : n - 1)},
          {"numDeletionVectorsRemoved", std::to_string(dvs)}};
}

}  // namespace

arrow::Result<OptimizeRewrite> rewrite_for_optimize(std::shared_ptr<delta::LogStore> store,
                                                    const OptimizeOptions& options) {
  DmlTarget target;
  target.store = store;
  target.name = store->location();
  target.snapshot = options.snapshot;
  if (!target.snapshot) {
    ARROW_ASSIGN_OR_RAISE(target.snapshot, delta::Snapshot::load(*store));
  }
  const auto& snapshot = *target.snapshot;
  // Append-only tables may be optimized: no row changes (the commit's removes carry
  // dataChange=false, which the append-only check lets pass).
  ARROW_RETURN_NOT_OK(delta::check_write_supported(snapshot.protocol(), snapshot.metadata(), target.name));
  ARROW_ASSIGN_OR_RAISE(auto sizes, optimize_file_sizes(snapshot.metadata(), target.name));
  if (options.target_file_size > 0) sizes.min_file_size = sizes.max_file_size = options.target_file_size;
  ARROW_ASSIGN_OR_RAISE(auto clustering, delta::clustering_columns(snapshot, target.name));
  if (clustering && !options.zorder_by.empty()) {
    // delta-spark's DELTA_CLUSTERING_WITH_ZORDER_BY.
    return invalid(
        "--zorder-by on table {}: it is a clustered table (CLUSTER BY), which OPTIMIZE clusters by its "
        "clustering columns; Z-order does not apply to it. Run OPTIMIZE without --zorder-by (to "
        "change the columns, change CLUSTER BY in its definition)",
        target.name);
  }
  if (clustering && !options.where.empty()) {
    // delta-spark's DELTA_CLUSTERING_WITH_PARTITION_PREDICATE: a clustered table has no partitions.
    return invalid("--where on table {}: it is a clustered table, which has no partitions to choose; "
                   "run OPTIMIZE without --where",
                   target.name);
  }
  if (options.min_file_size > 0) sizes.min_file_size = options.min_file_size;
  ARROW_ASSIGN_OR_RAISE(auto zorder, zorder_columns(target, options.zorder_by));
  ARROW_ASSIGN_OR_RAISE(auto candidates, candidate_files(target, options.where));

  OptimizeRewrite out;
  out.store = store;
  out.snapshot = target.snapshot;
  auto& outcome = out.outcome;
  outcome.version = snapshot.version();
  outcome.files_considered = static_cast<int64_t>(candidates.files.size());
  RowOrder order;
  std::vector<std::vector<delta::Add>> bins;
  std::string cluster_by_text = "[]";  // operationParameters.clusterBy
  std::optional<std::string> zcube_columns;
  if (clustering && !clustering->empty()) {
    // Liquid clustering, incremental: the files not yet clustered by the current columns, in
    // one bin ordered along the Hilbert curve of the clustering columns.
    json names = json::array();
    for (const auto& path : *clustering) {
      names.push_back(delta::column_path_text(path));
      outcome.clustered_by.push_back(delta::column_path_text(path));
      // Files keep the table schema's spelling; a column dropped since is an error here.
      if (!delta::field_at_path(*snapshot.schema(), path)) {
        return invalid("table {}: clustering column '{}' is not a column of the table", target.name,
                       delta::column_path_text(path));
      }
    }
    cluster_by_text = names.dump();
    zcube_columns = cluster_by_text;
    // Auto compaction (min_file_size set) takes small files only, and one bin of at most
    // max_input_bytes a round (it comes back for the rest); OPTIMIZE clusters every unclustered
    // file and unstable ZCUBE, in bins of max_input_bytes when that is set.
    const bool automatic_selection = options.min_file_size > 0;
    bins = clustering_bins(std::move(candidates.files), *zcube_columns, sizes.min_file_size, automatic_selection,
                           options.min_small_files, options.max_input_bytes,
                           automatic_selection && options.max_input_bytes > 0 ? 1 : 0);
    order.paths = *clustering;
    order.curve = Curve::kHilbert;
  } else {
    BinSelection select;
    select.whole_partitions = !zorder.empty() && options.min_small_files <= 0;
    select.min_small_files = options.min_small_files;
    select.max_input_bytes = options.max_input_bytes;
    bins = bins_of(candidates.files, sizes, select);
    for (const auto& c : zorder) order.paths.push_back({c});
  }
  const std::string zcube_id = random_uuid();
  std::set<delta::PartitionValues> partitions;
  for (const auto& bin : bins) {
    if (options.cancelled && options.cancelled()) {
      discard_rewrite(out);
      return arrow::Status::Cancelled("OPTIMIZE of table ", target.name, " was stopped (nothing was committed)");
    }
    auto adds = rewrite_bin(target, bin, order, sizes, options.cancelled, outcome.rows);
    if (!adds.ok()) {
      discard_rewrite(out);
      if (adds.status().IsCancelled()) {
        return arrow::Status::Cancelled("OPTIMIZE of table ", target.name, " was stopped (nothing was committed)");
      }
      return with_context(adds.status(), fmt::format("OPTIMIZE of table {} (nothing was committed)", target.name));
    }
    if (zcube_columns) {
      for (auto& a : *adds) {
        a.clustering_provider = delta::kLiquidClusteringProvider;
        a.tags = std::map<std::string, std::string>{{kZCubeIdTag, zcube_id},
                                                    {kZCubeZOrderByTag, *zcube_columns}};
      }
    }
    out.added.insert(out.added.end(), adds->begin(), adds->end());
    out.removed.insert(out.removed.end(), bin.begin(), bin.end());
    partitions.insert(bin.front().partition_values);
  }
  outcome.batches = static_cast<int64_t>(bins.size());
  outcome.partitions_optimized = static_cast<int64_t>(partitions.size());
  outcome.files_skipped = outcome.files_considered - static_cast<int64_t>(out.removed.size());
  outcome.metrics = optimize_metrics(out.added, out.removed);
  out.operation_parameters = {{"predicate", candidates.predicate},
                              {"zOrderBy", json(zorder).dump()},
                              {"clusterBy", cluster_by_text},
                              {"auto", options.automatic}};
  if (clustering) out.operation_parameters["isFull"] = false;
  return out;
}

void discard_rewrite(const OptimizeRewrite& rewrite) {
  delta::remove_data_files(*rewrite.store->objects(), rewrite.store->table_root(), rewrite.added);
}

arrow::Result<OptimizeOutcome> commit_optimize(OptimizeRewrite rewrite) {
  OptimizeOutcome outcome = rewrite.outcome;
  if (rewrite.empty()) return outcome;  // Spark commits nothing either
  const std::string table = rewrite.store->location();
  delta::Transaction txn(rewrite.store, rewrite.snapshot);
  for (const auto& f : rewrite.removed) txn.remove_file(removal_of(f));
  for (const auto& a : rewrite.added) txn.add_file(a);
  txn.mark_no_data_change();
  delta::CommitOptions commit;
  commit.operation = "OPTIMIZE";
  commit.operation_parameters = rewrite.operation_parameters;
  commit.operation_metrics = outcome.metrics;
  // A commit without data changes is checked at snapshot isolation (as Spark records it).
  commit.isolation_level = "SnapshotIsolation";
  fail_point("optimize_before_commit");  // tests: the new files are written, not committed
  auto committed = txn.commit(commit);
  if (!committed.ok()) {
    if (delta::is_commit_conflict(committed.status())) discard_rewrite(rewrite);
    return with_context(committed.status(),
                        fmt::format("OPTIMIZE of table {} (nothing was committed; run it again)", table));
  }
  outcome.committed = true;
  outcome.version = committed->version;
  outcome.attempts = committed->attempts;
  return outcome;
}

arrow::Result<OptimizeOutcome> optimize_table(std::shared_ptr<delta::LogStore> store,
                                              const OptimizeOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto rewrite, rewrite_for_optimize(std::move(store), options));
  if (rewrite.empty()) return rewrite.outcome;
  if (options.before_commit) {
    if (auto st = options.before_commit(); !st.ok()) {
      discard_rewrite(rewrite);
      return st;
    }
  }
  return commit_optimize(std::move(rewrite));
}

}  // namespace sluice::dml
