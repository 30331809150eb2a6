// State snapshots whose numbers are damaged: a watermark that is not a number is an error naming
// the file (std::stoll took "1000abc" as 1000 and resumed from a wrong watermark), and a file
// whose name is not a sequence number is not taken for a snapshot ("12abc.arrow" was 12).
#include "sluice/pipeline/state_store.h"

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/api.h>
#include <arrow/util/key_value_metadata.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "../temp_dir.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

const TxnVersions kProgress = {{"p/f/topic/0", 7}};

exec::WindowState state_with_watermark(int64_t watermark) {
  exec::WindowState state;
  state.watermark = watermark;
  state.input_max_event_time = {{"topic/0", watermark}};
  auto schema = arrow::schema({arrow::field("v", arrow::int64())});
  state.open_rows = arrow::Table::MakeEmpty(schema).ValueOrDie();
  return state;
}

// The only snapshot file in `dir`.
fs::path snapshot_in(const fs::path& dir) {
  fs::path found;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".arrow") found = e.path();
  }
  return found;
}

// Rewrites the snapshot at `path` with metadata `key` set to `value` (the rows unchanged).
void set_metadata(const fs::path& path, const std::string& key, const std::string& value) {
  auto in = arrow::io::ReadableFile::Open(path.string()).ValueOrDie();
  auto reader = arrow::ipc::RecordBatchFileReader::Open(in).ValueOrDie();
  auto meta = reader->schema()->metadata()->Copy();
  ASSERT_TRUE(meta->Set(key, value).ok());
  auto schema = reader->schema()->WithMetadata(meta);
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  for (int i = 0; i < reader->num_record_batches(); ++i) batches.push_back(reader->ReadRecordBatch(i).ValueOrDie());
  ASSERT_TRUE(in->Close().ok());
  auto out = arrow::io::FileOutputStream::Open(path.string()).ValueOrDie();
  auto writer = arrow::ipc::MakeFileWriter(out, schema).ValueOrDie();
  for (const auto& b : batches) ASSERT_TRUE(writer->WriteRecordBatch(*b).ok());
  ASSERT_TRUE(writer->Close().ok());
  ASSERT_TRUE(out->Close().ok());
}

TEST(StateStoreTest, AWatermarkThatIsNotANumberIsAnErrorNamingTheSnapshot) {
  testing::TempDir dir;
  ASSERT_TRUE(StateStore(dir.path()).save(kProgress, state_with_watermark(1000)).ok());
  const auto file = snapshot_in(dir.path());
  ASSERT_FALSE(file.empty());
  {
    auto loaded = StateStore(dir.path()).load(kProgress);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    ASSERT_TRUE(loaded->has_value());
    EXPECT_EQ((*loaded)->watermark, 1000) << "the undamaged snapshot loads";
  }
  for (const std::string bad : {"1000abc", "99999999999999999999", ""}) {
    set_metadata(file, "sluice.state.watermark", bad);
    auto loaded = StateStore(dir.path()).load(kProgress);
    ASSERT_FALSE(loaded.ok()) << "'" << bad << "' was taken as watermark "
                              << (loaded.ok() && loaded->has_value() ? (*loaded)->watermark : 0);
    const auto& message = loaded.status().message();
    EXPECT_NE(message.find(file.string() + ": damaged state snapshot metadata: sluice.state.watermark: " +
                           (bad.empty() ? std::string("expected a whole number") : "'" + bad + "'")),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("run a full refresh"), std::string::npos) << message;
  }
}

TEST(StateStoreTest, AFileWhoseNameIsNotASequenceNumberIsNotASnapshot) {
  testing::TempDir dir;
  ASSERT_TRUE(StateStore(dir.path()).save(kProgress, state_with_watermark(1000)).ok());
  const auto file = snapshot_in(dir.path());
  // A copy under a name std::stoll read as sequence 12 (newer than the real one, so tried first
  // and, matching the progress, loaded and kept while the real snapshot was deleted).
  set_metadata(file, "sluice.state.watermark", "5");
  fs::copy_file(file, dir.path() / "12abc.arrow");
  fs::remove(file);
  ASSERT_TRUE(StateStore(dir.path()).save(kProgress, state_with_watermark(1000)).ok());
  auto loaded = StateStore(dir.path()).load(kProgress);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->watermark, 1000);
  EXPECT_TRUE(fs::exists(dir.path() / "12abc.arrow")) << "not a snapshot: left alone";
}

}  // namespace
}  // namespace sluice::pipeline
