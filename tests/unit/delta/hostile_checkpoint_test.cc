// A checkpoint whose Parquet pages claim far more values than the file holds is refused with
// its name and the memory it would have taken, instead of making Arrow allocate what it claims.
#include <arrow/buffer.h>
#include <arrow/io/file.h>
#include <gtest/gtest.h>

#include <string>

#include "sluice/delta/checkpoint.h"

namespace sluice::delta {
namespace {

std::shared_ptr<arrow::Buffer> file_bytes(const std::string& path) {
  auto file = arrow::io::ReadableFile::Open(path).ValueOrDie();
  return file->Read(file->GetSize().ValueOrDie()).ValueOrDie();
}

TEST(HostileCheckpointTest, PagesClaimingMoreThanTheFileHoldsAreRefusedWithoutAllocatingIt) {
  // Found by fuzz/delta_checkpoint_fuzzer: 19,800 bytes whose dictionary page claims about 600
  // million strings; Arrow allocated 9.7 GB for them before reading one.
  const std::string input = std::string(SLUICE_TEST_DATA_DIR) +
                            "/../../fuzz/corpus/delta_checkpoint/oom-692136e978302e9a18e02189cf26f7cb8ca8d990";
  auto actions = read_checkpoint_bytes(file_bytes(input), "00000000000000000010.checkpoint.parquet");
  ASSERT_FALSE(actions.ok());
  const std::string message = actions.status().message();
  EXPECT_NE(message.find("checkpoint 00000000000000000010.checkpoint.parquet"), std::string::npos) << message;
  EXPECT_NE(message.find("decoding it would take more than 256 MiB"), std::string::npos) << message;
  EXPECT_NE(message.find("the file has 19800 bytes"), std::string::npos) << message;
}

}  // namespace
}  // namespace sluice::delta
