// libFuzzer target: any bytes as pipeline.yaml must load or fail with an error (duplicate keys,
// ${env:}/${file:} references, librdkafka properties), never crash, hang or throw.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "sluice/pipeline/pipeline_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // One folder per process, rewritten for every input (load_pipeline_config reads a folder).
  struct Folder {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("sluice-fuzz-pipeline-config-" + std::to_string(::getpid()));
    Folder() { std::filesystem::create_directories(path); }
    ~Folder() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Folder folder;
  const auto& dir = folder.path;
  {
    std::ofstream out(dir / "pipeline.yaml", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  auto config = sluice::pipeline::load_pipeline_config(dir);
  if (!config.ok()) (void)config.status().message();
  return 0;
}
