// Parquet data files for Delta tables.
#include "sluice/delta/data_file_writer.h"

#include <algorithm>

#include <arrow/io/file.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>
#include <arrow/util/byte_size.h>
#include <fcntl.h>
#include <parquet/arrow/schema.h>
#include <parquet/arrow/writer.h>
#include <parquet/properties.h>
#include <unistd.h>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/delta/log_store.h"

namespace sluice::delta {

namespace fs = std::filesystem;

namespace {

arrow::Compression::type to_arrow(Compression c) {
  switch (c) {
    case Compression::kZstd: return arrow::Compression::ZSTD;
    case Compression::kSnappy: return arrow::Compression::SNAPPY;
    case Compression::kUncompressed: return arrow::Compression::UNCOMPRESSED;
  }
  return arrow::Compression::ZSTD;
}

const char* suffix(Compression c) {
  switch (c) {
    case Compression::kZstd: return ".zstd";
    case Compression::kSnappy: return ".snappy";
    case Compression::kUncompressed: return "";
  }
  return "";
}

}  // namespace

// A column's page buffer and its row group's in-memory sink grow by doubling to the same sizes
// in every row group and are freed when the page or the row group is done; with mimalloc
// purging freed memory at once (cli/main.cc) each of those sizes was faulted in and zeroed by
// the kernel again (clear_page_erms under BufferOutputStream::Reserve and PlainEncoder). This
// keeps up to 16 MiB of freed blocks of 256 KiB or more. Process-wide, never destroyed: the
// buffers of a closed file may still be in flight.
RecyclingMemoryPool& parquet_writer_pool() {
  static auto* pool =
      new RecyclingMemoryPool(arrow::default_memory_pool(), 16ll << 20, 256ll << 10);
  return *pool;
}

RowGroupBudget& RowGroupBudget::process() {
  static RowGroupBudget budget(kProcessTotalBytes, kProcessMinRowGroupBytes);
  return budget;
}

arrow::Result<std::unique_ptr<DataFileWriter>> DataFileWriter::make(
    const fs::path& table_root, const std::string& relative_dir,
    std::shared_ptr<arrow::Schema> schema, const DataFileOptions& options) {
  return make(storage::local_store(), table_root, relative_dir, std::move(schema), options);
}

arrow::Result<std::unique_ptr<DataFileWriter>> DataFileWriter::make(
    std::shared_ptr<storage::ObjectStore> objects, const fs::path& table_root,
    const std::string& relative_dir, std::shared_ptr<arrow::Schema> schema,
    const DataFileOptions& options) {
  std::unique_ptr<DataFileWriter> w(new DataFileWriter(schema, options));
  const std::string name = fmt::format("part-00000-{}-c000{}.parquet", random_uuid(),
                                       suffix(options.compression));
  w->relative_path_ = relative_dir.empty() ? name : relative_dir + "/" + name;
  w->full_path_ = table_root / w->relative_path_;
  w->objects_ = std::move(objects);
  auto sink = w->objects_->open_output(w->full_path_.string());
  if (!sink.ok()) {
    return io_failure(sink.status(), "cannot create data file", w->objects_->display(w->full_path_.string()));
  }
  w->sink_ = *sink;

  parquet::WriterProperties::Builder builder;
  builder.memory_pool(&parquet_writer_pool())
      ->compression(to_arrow(options.compression))
      ->max_row_group_length(options.row_group_rows)
      ->created_by("sluice " SLUICE_VERSION)
      ->write_batch_size(64 * 1024);
  // Floating-point columns rarely repeat values: hashing them for a dictionary that is
  // abandoned after 1 MiB costs time and gains nothing.
  for (const auto& field : schema->fields()) {
    auto id = field->type()->id();
    if (id == arrow::Type::FLOAT || id == arrow::Type::DOUBLE) builder.disable_dictionary(field->name());
    const auto& plain = options.columns_without_dictionary;
    if (std::find(plain.begin(), plain.end(), field->name()) != plain.end()) builder.disable_dictionary(field->name());
    // Parquet min/max of binary columns (a Kafka key or value: whole payloads) is a byte
    // comparison of every value that no reader prunes by; Delta keeps no bounds for binary
    // columns either (delta/stats.cc). Strings and numbers keep theirs.
    if (id == arrow::Type::BINARY || id == arrow::Type::LARGE_BINARY) builder.disable_statistics(field->name());
  }
  auto props = builder.build();
  // Microsecond timestamps, never INT96 or nanoseconds: what Delta readers expect.
  auto arrow_props = parquet::ArrowWriterProperties::Builder()
                         .coerce_timestamps(arrow::TimeUnit::MICRO)
                         ->store_schema()
                         ->set_use_threads(options.parallel_columns)
                         ->build();
  // Delta's string bounds from the file's own chunk statistics, not a second pass (stats.h).
  std::shared_ptr<parquet::SchemaDescriptor> file_schema;
  ARROW_RETURN_NOT_OK(
      parquet::arrow::ToParquetSchema(schema.get(), *props, *arrow_props, &file_schema));
  ARROW_RETURN_NOT_OK(w->stats_.take_string_bounds_from_parquet(*file_schema, *props));
  ARROW_ASSIGN_OR_RAISE(w->writer_,
                        parquet::arrow::FileWriter::Open(*schema, &parquet_writer_pool(),
                                                         w->sink_, props, arrow_props));
  return w;
}

DataFileWriter::DataFileWriter(std::shared_ptr<arrow::Schema> schema,
                               const DataFileOptions& options)
    : schema_(schema),
      options_(options),
      stats_(std::move(schema)),
      budget_(options.row_group_budget ? options.row_group_budget : &RowGroupBudget::process()) {}

DataFileWriter::~DataFileWriter() {
  if (!closed_) abort();
}

arrow::Status DataFileWriter::write(const arrow::RecordBatch& batch) {
  if (batch.num_rows() == 0) return arrow::Status::OK();
  ARROW_RETURN_NOT_OK(stats_.update(batch));
  if (row_group_input_bytes_ >= options_.row_group_bytes ||
      budget_->should_end(row_group_input_bytes_)) {
    // Flushes the buffered row group's pages to the file. Done before the next write rather
    // than after the one that reached the bound, so a file never ends in an empty row group.
    release_row_group_bytes();
    ARROW_RETURN_NOT_OK(io_failure(writer_->NewBufferedRowGroup(), "cannot write data file",
                                   full_path_.string()));
  }
  ARROW_RETURN_NOT_OK(io_failure(writer_->WriteRecordBatch(batch), "cannot write data file",
                                 full_path_.string()));
  // The bytes the batch's rows span (a slice counts its part); types the helper does not
  // know count their whole buffers.
  auto referenced = arrow::util::ReferencedBufferSize(batch);
  const int64_t bytes = referenced.ok() ? *referenced : arrow::util::TotalBufferSize(batch);
  row_group_input_bytes_ += bytes;
  budget_->add(bytes);
  return arrow::Status::OK();
}

void DataFileWriter::release_row_group_bytes() {
  budget_->release(row_group_input_bytes_);
  row_group_input_bytes_ = 0;
}

int64_t DataFileWriter::bytes_written() const {
  auto pos = sink_->Tell();
  return pos.ok() ? *pos : 0;
}

arrow::Result<Add> DataFileWriter::close() {
  release_row_group_bytes();
  ARROW_RETURN_NOT_OK(io_failure(writer_->Close(), "cannot write data file", full_path_.string()));
  // The size before the stream closes: S3 streams cannot tell it after.
  ARROW_ASSIGN_OR_RAISE(const int64_t size, sink_->Tell());
  ARROW_RETURN_NOT_OK(io_failure(objects_->finish_output(full_path_.string(), *sink_),
                                 "cannot write data file", full_path_.string()));
  closed_ = true;
  Add add;
  add.path = uri_encode_path(relative_path_);
  add.size = static_cast<int64_t>(size);
  add.modification_time = now_millis();
  add.data_change = true;
  ARROW_ASSIGN_OR_RAISE(add.stats, stats_.finish(writer_->metadata().get()));
  return add;
}

void DataFileWriter::abort() {
  release_row_group_bytes();
  if (writer_ && !closed_) (void)writer_->Close();
  // Abort, not Close: an S3 upload in progress is dropped rather than completed and deleted.
  if (sink_ && !sink_->closed()) (void)sink_->Abort();
  closed_ = true;
  if (objects_) (void)objects_->remove(full_path_.string());
}

void remove_data_files(storage::ObjectStore& objects, const fs::path& table_root,
                       const std::vector<Add>& adds) {
  for (const auto& a : adds) {
    auto path = uri_decode_path(a.path);
    if (path.ok()) (void)objects.remove((table_root / *path).string());
  }
}

}  // namespace sluice::delta
