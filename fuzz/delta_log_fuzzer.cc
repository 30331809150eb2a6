// libFuzzer target: any bytes as a Delta log must load as a snapshot or fail with an error,
// never crash, hang or read out of bounds. The input is split at lines holding only "%%" into
// the commit files 0, 1, 2, ... of a table in a temporary folder, which is then listed,
// validated and replayed (Snapshot::load). A snapshot that loads is checkpointed and loaded
// again from the checkpoint, and must come back the same (the checkpoint round trip).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "sluice/delta/checkpoint.h"
#include "sluice/delta/snapshot.h"

namespace {

namespace fs = std::filesystem;
using sluice::DeltaVersion;

const fs::path& table_dir() {
  static const fs::path dir = [] {
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    return base / ("sluice-delta-log-fuzz-" + std::to_string(::getpid()));
  }();
  return dir;
}

void same_or_die(bool same, const char* what) {
  if (!same) {
    std::fprintf(stderr, "checkpoint round trip changed %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::error_code ec;
  fs::remove_all(table_dir(), ec);
  fs::create_directories(table_dir() / "_delta_log");
  sluice::delta::LogStore store(table_dir());
  int64_t version = 0;
  size_t pos = 0;
  while (pos <= input.size() && version < 64) {
    size_t end = input.find("\n%%\n", pos);
    const size_t stop = end == std::string_view::npos ? input.size() : end + 1;
    std::ofstream(store.commit_path(DeltaVersion(version)), std::ios::binary)
        << input.substr(pos, stop - pos);
    ++version;
    if (end == std::string_view::npos) break;
    pos = end + 4;
  }
  auto snapshot = sluice::delta::Snapshot::load(store);
  if (!snapshot.ok()) {
    (void)snapshot.status().ToString();
    return 0;
  }
  const auto& snap = **snapshot;
  (void)snap.num_records();
  (void)snap.size_bytes();
  (void)snap.tombstones();
  auto files = snap.files();
  if (!sluice::delta::write_checkpoint(store, snap).ok()) return 0;
  auto again = sluice::delta::Snapshot::load(store);
  if (!again.ok()) {
    std::fprintf(stderr, "a checkpoint of a loadable snapshot does not load: %s\n",
                 again.status().ToString().c_str());
    std::abort();
  }
  const auto& reloaded = **again;
  same_or_die(reloaded.checkpoint_version() == snap.version(), "the version");
  same_or_die(reloaded.protocol() == snap.protocol(), "the protocol");
  same_or_die(reloaded.metadata().schema_string == snap.metadata().schema_string, "the schema");
  same_or_die(reloaded.metadata().partition_columns == snap.metadata().partition_columns,
              "the partition columns");
  same_or_die(reloaded.metadata().configuration == snap.metadata().configuration,
              "the configuration");
  same_or_die(reloaded.txns().size() == snap.txns().size(), "the txns");
  for (const auto& [app, txn] : snap.txns()) {
    same_or_die(reloaded.txn_version(app) == txn.version, "a txn version");
  }
  auto files_again = reloaded.files();
  same_or_die(files_again.size() == files.size(), "the number of files");
  for (const auto& f : files) {
    bool found = false;
    for (const auto& g : files_again) {
      if (g.path == f.path) {
        found = g.size == f.size && g.partition_values == f.partition_values && g.stats == f.stats;
        break;
      }
    }
    same_or_die(found, "a file");
  }
  return 0;
}
