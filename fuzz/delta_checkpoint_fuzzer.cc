// libFuzzer target: any bytes as a classic Delta checkpoint (a Parquet file) must give its
// actions or an error, never crash, hang or read out of bounds.
#include <arrow/buffer.h>

#include <cstddef>
#include <cstdint>

#include "sluice/delta/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto buffer = std::make_shared<arrow::Buffer>(data, static_cast<int64_t>(size));
  auto actions = sluice::delta::read_checkpoint_bytes(buffer, "fuzz.checkpoint.parquet");
  if (!actions.ok()) {
    (void)actions.status().ToString();
    return 0;
  }
  for (const auto& a : *actions) (void)sluice::delta::to_json(a).dump();
  return 0;
}
