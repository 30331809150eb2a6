// `sluice test <dir> [-k text] [--case ID] [--list] [--junit-xml FILE]`: runs the fixture
// cases in <pipeline>/tests/*.yaml without a broker (testing/fixture_run.h). Exit 0 when every
// case passed, 1 when one failed, 2 when a fixture or the command line is wrong.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <vector>

#include "sluice/cli/table_commands.h"
#include "sluice/common/utf8.h"
#include "sluice/testing/fixture.h"
#include "sluice/testing/fixture_run.h"

namespace sluice::cli {

namespace {

namespace fs = std::filesystem;

constexpr int kExitFailed = 1;
constexpr int kExitBadFixture = 2;

struct Found {
  fs::path pipeline;
  testing::TestCase test_case;
};

// The pipeline folders under `dir`: itself when it holds pipeline.yaml, else its subfolders that do.
std::vector<fs::path> pipeline_folders(const fs::path& dir) {
  if (fs::exists(dir / "pipeline.yaml")) return {dir};
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory() && fs::exists(e.path() / "pipeline.yaml")) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

arrow::Result<std::vector<Found>> find_cases(const fs::path& dir) {
  if (!fs::is_directory(dir)) return arrow::Status::Invalid(fmt::format("{} is not a folder", dir.string()));
  std::vector<Found> out;
  const auto pipelines = pipeline_folders(dir);
  if (pipelines.empty()) {
    return arrow::Status::Invalid(fmt::format("{} holds no pipeline.yaml, nor do its subfolders", dir.string()));
  }
  for (const auto& p : pipelines) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(p / "tests", ec)) {
      const auto ext = e.path().extension();
      if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      const auto rel = fs::relative(f, dir).generic_string();
      ARROW_ASSIGN_OR_RAISE(auto cases, testing::load_fixture_file(f, f.string()));
      for (auto& c : cases) {
        c.id = rel + "::" + c.name;
        out.push_back({p, std::move(c)});
      }
    }
  }
  if (out.empty()) {
    return arrow::Status::Invalid(fmt::format("no test cases under {}: write them in <pipeline>/tests/*.yaml "
                                              "(README.md \"Testing pipelines\")", dir.string()));
  }
  return out;
}

// XML text: UTF-8 (a file name's bytes that are not become U+FFFD), markup escaped.
std::string xml_escape(const std::string& bytes) {
  std::string scratch;
  const std::string_view s = sluice::valid_utf8(bytes, &scratch);
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters other than tab and newlines are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += '?';
        } else {
          out += c;
        }
    }
  }
  return out;
}

struct Outcome {
  std::string id;
  std::string file;
  bool passed = false;
  bool error = false;
  std::string text;
  double seconds = 0;
};

arrow::Status write_junit(const std::string& path, const std::vector<Outcome>& outcomes, double seconds) {
  int failures = 0, errors = 0;
  for (const auto& o : outcomes) {
    failures += !o.passed && !o.error;
    errors += o.error;
  }
  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  xml += fmt::format("<testsuites>\n<testsuite name=\"sluice test\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3f}\">\n",
                     outcomes.size(), failures, errors, seconds);
  for (const auto& o : outcomes) {
    const auto sep = o.id.find("::");
    xml += fmt::format("  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\"", xml_escape(o.id.substr(0, sep)),
                       xml_escape(sep == std::string::npos ? o.id : o.id.substr(sep + 2)), o.seconds);
    if (o.passed) {
      xml += "/>\n";
      continue;
    }
    const char* tag = o.error ? "error" : "failure";
    xml += fmt::format(">\n    <{} message=\"{}\">{}</{}>\n  </testcase>\n", tag,
                       o.error ? "the case could not run" : "rows or counts differ", xml_escape(o.text), tag);
  }
  xml += "</testsuite>\n</testsuites>\n";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << xml;
  if (!out) return arrow::Status::IOError(fmt::format("cannot write {}", path));
  return arrow::Status::OK();
}

}  // namespace

void add_test_command(CLI::App& app, int* exit_code) {
  static std::string dir;
  static std::vector<std::string> substrings;
  static std::vector<std::string> exact;
  static bool list = false;
  static std::string junit;
  auto* c = app.add_subcommand("test",
                               "Run the pipeline tests in <pipeline>/tests/*.yaml without a broker: each case on a "
                               "temporary storage folder (exit 0 all passed, 1 a case failed, 2 a bad fixture)");
  c->add_option("dir", dir, "A pipeline folder, or a folder of pipeline folders")->required();
  c->add_option("-k", substrings, "Run only the cases whose id (file::name) contains this text (repeatable)");
  c->add_option("--case", exact, "Run only the case with exactly this id (repeatable)");
  c->add_flag("--list", list, "Print the ids of the cases, one a line, and run nothing");
  c->add_option("--junit-xml", junit, "Also write the results as JUnit XML to this file");
  c->callback([exit_code] {
    auto found = find_cases(dir);
    if (!found.ok()) {
      std::cerr << "sluice: error: " << found.status().message() << "\n";
      *exit_code = kExitBadFixture;
      return;
    }
    std::vector<Found> selected;
    for (auto& f : *found) {
      const auto& id = f.test_case.id;
      bool take = substrings.empty() && exact.empty();
      for (const auto& s : substrings) take = take || id.find(s) != std::string::npos;
      for (const auto& e : exact) take = take || id == e;
      if (take) selected.push_back(std::move(f));
    }
    for (const auto& e : exact) {
      if (std::none_of(selected.begin(), selected.end(), [&](const Found& f) { return f.test_case.id == e; })) {
        std::cerr << "sluice: error: no case has the id '" << e << "' (sluice test " << dir << " --list shows them)\n";
        *exit_code = kExitBadFixture;
        return;
      }
    }
    if (list) {
      for (const auto& f : selected) std::cout << f.test_case.id << "\n";
      *exit_code = 0;
      return;
    }
    if (selected.empty()) {
      std::cerr << "sluice: error: no case matches the -k given (sluice test " << dir << " --list shows them)\n";
      *exit_code = kExitBadFixture;
      return;
    }
    const auto started = std::chrono::steady_clock::now();
    std::vector<Outcome> outcomes;
    int passed = 0, failed = 0, errors = 0;
    for (const auto& f : selected) {
      Outcome o;
      o.id = f.test_case.id;
      auto result = testing::run_case(f.pipeline, f.test_case);
      if (!result.ok()) {
        o.error = true;
        o.text = result.status().message();
        ++errors;
        std::cout << "ERROR " << o.id << "\n  " << o.text << "\n";
      } else {
        o.passed = result->passed;
        o.text = result->failure;
        o.seconds = result->seconds;
        std::cout << (o.passed ? "PASS  " : "FAIL  ") << o.id << fmt::format(" ({:.2f} s)", o.seconds) << "\n";
        for (const auto& n : result->notes) std::cout << "  note: " << n << "\n";
        if (!o.passed) std::cout << o.text;
        (o.passed ? passed : failed) += 1;
      }
      std::cout.flush();
      outcomes.push_back(std::move(o));
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::cout << fmt::format("{} passed, {} failed, {} errors in {:.2f} s\n", passed, failed, errors, seconds);
    if (!junit.empty()) {
      if (auto st = write_junit(junit, outcomes, seconds); !st.ok()) {
        std::cerr << "sluice: error: " << st.message() << "\n";
        *exit_code = kExitBadFixture;
        return;
      }
    }
    *exit_code = errors > 0 ? kExitBadFixture : failed > 0 ? kExitFailed : 0;
  });
}

}  // namespace sluice::cli
