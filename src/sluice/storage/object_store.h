// One interface to where a table's files live (delta-rs's ObjectStore / LogStore split): the
// local filesystem (local_store.h), S3 (s3_store.h), GCS (gcs_store.h) or Azure Blob
// (azure_store.h). Paths are '/'-separated and absolute in the store's namespace: a local path,
// "bucket/key" on S3 and GCS, "container/blob" on Azure. The Delta log logic above it never asks
// which one it has.
#pragma once

#include <arrow/io/type_fwd.h>
#include <arrow/result.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/storage/location.h"

namespace sluice::storage {

// How deep a listing goes: the objects directly in a folder, or every object below it.
enum class ListDepth { kFolder, kRecursive };

// Outcome of a put-if-absent write: a lost race is an expected result, not an error.
enum class PutResult { kWritten, kAlreadyExists };

struct ObjectInfo {
  std::string name;  // the last path component
  int64_t size = 0;
  int64_t mtime_nanos = 0;  // modification time (S3: LastModified), epoch nanoseconds
};

// Requests sent to a remote store, by kind (zero for the local store). Counted so a bench or
// test can report requests per commit.
struct RequestCounts {
  int64_t list = 0;
  int64_t get = 0;   // whole-object reads and opened input files
  int64_t head = 0;
  int64_t put = 0;   // new objects (conditional or not) and uploads of data files
  int64_t remove = 0;
  int64_t total() const { return list + get + head + put + remove; }
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // "file", "s3", "gs" or "az".
  virtual const char* scheme() const = 0;
  // `path` as the user would write it, for messages: "/data/t/x" or "s3://bucket/key".
  virtual std::string display(const std::string& path) const = 0;

  // Objects directly in folder `dir`, ascending by name, only names after `start_after` when
  // given (S3 sends it to the server: the listing does not grow with what precedes it).
  // Empty when the folder does not exist.
  virtual arrow::Result<std::vector<ObjectInfo>> list(const std::string& dir,
                                                      const std::string& start_after = "") const = 0;
  // Every object under folder `dir` at any depth, `name` its path below `dir` ('/'-separated),
  // ascending: one prefix listing without a delimiter (S3, GCS and Azure page through it), for
  // VACUUM. The local store walks its folders itself (vacuum.cc): NotImplemented there.
  virtual arrow::Result<std::vector<ObjectInfo>> list_recursive(const std::string& dir) const;
  // Size and time of an object; nullopt when it does not exist.
  virtual arrow::Result<std::optional<ObjectInfo>> head(const std::string& path) const = 0;
  // The whole object; an IOError naming the path when it cannot be read or is missing.
  virtual arrow::Result<std::string> read(const std::string& path) const = 0;
  virtual arrow::Result<std::shared_ptr<arrow::io::RandomAccessFile>> open_input(
      const std::string& path) const = 0;
  // A new object written as a stream (a data file, a checkpoint); it is durable (local: fsync
  // of file and folder) or visible (S3: upload completed) once finish_output returns OK.
  virtual arrow::Result<std::shared_ptr<arrow::io::OutputStream>> open_output(const std::string& path) = 0;
  virtual arrow::Status finish_output(const std::string& path, arrow::io::OutputStream& out) = 0;
  // Writes `content` at `path` only if nothing is there, atomically: readers see all of it or
  // nothing, and of two racing writers exactly one gets kWritten.
  virtual arrow::Result<PutResult> put_if_absent(const std::string& path, const std::string& content) = 0;
  // Writes `content` at `path`, replacing what is there, atomically (a hint like
  // _delta_log/_last_checkpoint).
  virtual arrow::Status put(const std::string& path, const std::string& content) = 0;
  // Deletes an object; OK when it is not there.
  virtual arrow::Status remove(const std::string& path) = 0;

  RequestCounts requests() const;

 protected:
  void count_list() const { list_.fetch_add(1, std::memory_order_relaxed); }
  void count_get() const { get_.fetch_add(1, std::memory_order_relaxed); }
  void count_head() const { head_.fetch_add(1, std::memory_order_relaxed); }
  void count_put() const { put_.fetch_add(1, std::memory_order_relaxed); }
  void count_remove() const { remove_.fetch_add(1, std::memory_order_relaxed); }

 private:
  // Touched by every thread that uses the store: atomics, no lock.
  mutable std::atomic<int64_t> list_{0}, get_{0}, head_{0}, put_{0}, remove_{0};
};

// The process's local-filesystem store.
std::shared_ptr<ObjectStore> local_store();

// A store that reaches `location` (one per S3, GCS or Azure endpoint and credentials; the local
// store for a path) and the root path of the location in it. Options are checked first
// (normalize_storage_options; an option of another store is refused); settings missing from
// them come from the environment (AWS_*; STORAGE_EMULATOR_HOST, GOOGLE_*; AZURE_STORAGE_*).
struct OpenedLocation {
  std::shared_ptr<ObjectStore> store;
  std::string root;
};
arrow::Result<OpenedLocation> open_location(const Location& location, const StorageOptions& options = {});

}  // namespace sluice::storage
