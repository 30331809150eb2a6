// The json_decoder fuzz corpus as records, for the decoder tests that compare two decoding paths
// over it (json_decoder_events_test, json_payload_decoder_narrowing_test).
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace sluice::format::testing {

// Each corpus file's records (byte 0 picks the fuzzer's path; the rest is records, one a line).
inline std::vector<std::string> json_corpus_records() {
  std::vector<std::string> out;
  const std::filesystem::path dir = std::filesystem::path(SLUICE_TEST_DATA_DIR) / ".." / ".." / "fuzz" / "corpus" / "json_decoder";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string data = ss.str();
    if (data.empty()) continue;
    std::string rest = data.substr(1);
    for (size_t start = 0;;) {
      size_t end = rest.find('\n', start);
      out.push_back(rest.substr(start, end == std::string::npos ? std::string::npos : end - start));
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  return out;
}

}  // namespace sluice::format::testing
