// Data files through Arrow's filesystem (arrow_fs_store.h).
#include "sluice/storage/arrow_fs_store.h"

#include <arrow/filesystem/filesystem.h>
#include <arrow/io/interfaces.h>

#include "sluice/common/status.h"

namespace sluice::storage {

arrow::Result<std::shared_ptr<arrow::io::RandomAccessFile>> ArrowFsStore::open_input(const std::string& path) const {
  count_head();
  count_get();
  ARROW_ASSIGN_OR_RAISE(auto fs, filesystem());
  auto file = fs->OpenInputFile(path);
  if (!file.ok()) return io_failure(file.status(), "cannot open", display(path));
  return file;
}

arrow::Result<std::shared_ptr<arrow::io::OutputStream>> ArrowFsStore::open_output(const std::string& path) {
  count_put();
  ARROW_ASSIGN_OR_RAISE(auto fs, filesystem());
  auto out = fs->OpenOutputStream(path);
  if (!out.ok()) return io_failure(out.status(), "cannot create", display(path));
  return out;
}

arrow::Status ArrowFsStore::finish_output(const std::string& path, arrow::io::OutputStream& out) {
  if (out.closed()) return arrow::Status::OK();
  auto st = out.Close();
  if (!st.ok()) return io_failure(st, "cannot upload", display(path));
  return arrow::Status::OK();
}

}  // namespace sluice::storage
