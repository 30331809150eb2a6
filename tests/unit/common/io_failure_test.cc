// I/O failures name the file and the errno by name, with what to do for a full disk, whether
// they come from a system call or from Arrow's I/O layer (whose message alone says only
// "Error writing bytes to file").
#include <arrow/util/io_util.h>
#include <gtest/gtest.h>

#include <cerrno>

#include "sluice/common/status.h"

namespace sluice {
namespace {

TEST(IoFailureTest, SystemCallErrnoIsNamedWithWhatToDo) {
  auto st = io_failure(ENOSPC, "cannot write", "/data/t/_delta_log/.00000000000000000001.json.x.tmp");
  EXPECT_TRUE(st.IsIOError());
  EXPECT_EQ(st.message(),
            "cannot write /data/t/_delta_log/.00000000000000000001.json.x.tmp: No space left on "
            "device (ENOSPC): the disk is full (or the quota is used up); free space and run again");
}

TEST(IoFailureTest, ArrowErrnoDetailReplacesItsVagueMessage) {
  auto arrow_error = arrow::internal::IOErrorFromErrno(ENOSPC, "Error writing bytes to file");
  ASSERT_EQ(arrow_error.message(), "Error writing bytes to file");  // what users used to see
  auto st = io_failure(arrow_error, "cannot write data file", "/data/t/part-0.parquet");
  EXPECT_EQ(st.message(),
            "cannot write data file /data/t/part-0.parquet: No space left on device (ENOSPC): the "
            "disk is full (or the quota is used up); free space and run again");
}

TEST(IoFailureTest, ErrnoInTheMessageIsFoundToo) {
  auto st = io_failure(arrow::Status::IOError("Error writing bytes to file. Detail: [errno 27] "
                                              "File too large"),
                       "cannot write checkpoint", "/t/_delta_log/00000000000000000010.checkpoint.parquet");
  EXPECT_NE(st.message().find("File too large (EFBIG): the file grew past the file-size limit"),
            std::string::npos)
      << st.message();
}

TEST(IoFailureTest, StatusWithoutErrnoKeepsItsMessageAfterThePath) {
  auto st = io_failure(arrow::Status::Invalid("bad row group"), "cannot write data file", "/t/f");
  EXPECT_EQ(st.message(), "cannot write data file /t/f: bad row group");
  EXPECT_TRUE(io_failure(arrow::Status::OK(), "x", "y").ok());
}

}  // namespace
}  // namespace sluice
