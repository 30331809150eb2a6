// SQL that a Python definition generated: which statement of a generated SourceFile came from
// which line of the .py file it is named for, so format_error points at the Python line.
//
// A process-wide table keyed by the SourceFile's name (the .py path) rather than a field of
// SourceFile: errors are formatted in dozens of places from a SourceFile alone, and this way
// none of them changes (docs/decisions.md "Python pipelines (py)").
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace sluice::sql {

// The statement text[begin, end) of a generated file was written by `what` (e.g.
// "@dlt.table events_silver") at `line` of the .py file.
struct GeneratedOrigin {
  size_t begin = 0;
  size_t end = 0;
  int line = 0;
  std::string what;
};

// Records (replacing any earlier record) the origins of the generated file named `name`.
void register_generated_source(const std::string& name, std::vector<GeneratedOrigin> origins);

// The origin of the statement holding `offset` in the generated file `name`; none for a file
// that was not generated.
std::optional<GeneratedOrigin> generated_origin(const std::string& name, size_t offset);

}  // namespace sluice::sql
