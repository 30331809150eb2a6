// CPU per record of from_json (format::decode_json) on JSON lines from a file, by path:
//   document - the RapidJSON-document path (internal::decode_json_with_document: before the scanner)
//   events   - decode_json (scanner, SAX slots, document where needed)
//   first:N  - decode_json decoding only the first N fields (what a query reading N fields gets)
// Usage: from_json_bench <lines file> '<STRUCT<...> type>' <mode>... ; prints the best of 3
// rounds of 20 passes over the file, in process CPU time (clock_gettime CPUTIME).
// bench/from_json_payloads.py writes the bench pipeline's payloads and a 20-field variant.
#include <arrow/api.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "sluice/format/json_decoder.h"
#include "sluice/sql/types.h"

namespace {

double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: from_json_bench <lines file> '<STRUCT<...>>' document|events|first:N ...\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << "cannot read " << argv[1] << ": write it with bench/from_json_payloads.py\n";
    return 2;
  }
  arrow::StringBuilder builder;
  for (std::string line; std::getline(in, line);) {
    if (!builder.Append(line).ok()) return 1;
  }
  auto input = builder.Finish().ValueOrDie();
  auto type = sluice::sql::parse_type(argv[2]);
  if (!type.ok()) {
    std::cerr << type.status().ToString() << "\n";
    return 2;
  }
  for (int m = 3; m < argc; ++m) {
    const std::string mode = argv[m];
    std::vector<bool> decoded;
    if (mode.rfind("first:", 0) == 0) {
      decoded.assign((*type)->num_fields(), false);
      const int n = std::min(std::stoi(mode.substr(6)), (*type)->num_fields());
      for (int i = 0; i < n; ++i) decoded[i] = true;
    } else if (mode != "document" && mode != "events") {
      std::cerr << "unknown mode " << mode << ": document, events or first:N\n";
      return 2;
    }
    constexpr int kPasses = 20;
    double best = 1e9;
    for (int round = 0; round < 3; ++round) {
      const double start = cpu_seconds();
      for (int p = 0; p < kPasses; ++p) {
        auto out = mode == "document" ? sluice::format::internal::decode_json_with_document(*input, *type)
                                      : sluice::format::decode_json(*input, *type, nullptr, decoded);
        if (!out.ok() || (*out)->length() != input->length()) return 1;
      }
      best = std::min(best, (cpu_seconds() - start) / (kPasses * static_cast<double>(input->length())));
    }
    std::cout << mode << ": " << best * 1e9 << " ns CPU per record (" << input->length() << " records)\n";
  }
  return 0;
}
