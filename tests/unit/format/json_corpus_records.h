// The json_decoder fuzz corpus as records, and random records, for the decoder tests that compare two decoding paths
// over it (json_decoder_events_test, json_payload_decoder_narrowing_test).
#pragma once

#include <filesystem>
#include <fstream>
#include <random>
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

// A random JSON object of up to 7 members, keys and values drawn from the given lists (the
// generated records of those tests; their rng call order is part of the records they get).
inline std::string random_json_object(std::mt19937& rng, const std::vector<std::string>& keys,
                                      const std::vector<std::string>& values) {
  std::string rec = "{";
  const int members = static_cast<int>(rng() % 8);
  for (int m = 0; m < members; ++m) {
    if (m) rec += ",";
    rec += "\"" + keys[rng() % keys.size()] + "\":" + values[rng() % values.size()];
  }
  rec += "}";
  return rec;
}

}  // namespace sluice::format::testing
