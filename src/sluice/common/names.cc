// Names that become file names.
#include "sluice/common/names.h"

#include <fmt/format.h>

namespace sluice {

std::string path_name_problem(const std::string& name) {
  if (name.empty()) return "it is empty";
  if (name == "." || name == "..") return fmt::format("'{}' names a folder, not a table", name);
  for (unsigned char c : name) {
    if (c == '/' || c == '\\') return "it contains a path separator ('/' or '\\'), so it would name a file outside its folder";
    if (c < 0x20 || c == 0x7f) return "it contains a control character";
  }
  if (name.size() > kMaxPathNameBytes) {
    return fmt::format("it is {} bytes long; at most {} are allowed (it becomes a file name)", name.size(),
                       kMaxPathNameBytes);
  }
  return "";
}

}  // namespace sluice
