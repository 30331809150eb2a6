// Nesting depth of Arrow types (see the header).
#include "sluice/common/nesting.h"

#include <arrow/type.h>

#include <algorithm>

namespace sluice {

int nesting_depth(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::MAP: {
      const auto& m = static_cast<const arrow::MapType&>(type);
      return 1 + std::max(nesting_depth(*m.key_type()), nesting_depth(*m.item_type()));
    }
    case arrow::Type::STRUCT:
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST:
    case arrow::Type::FIXED_SIZE_LIST:
    case arrow::Type::LIST_VIEW:
    case arrow::Type::LARGE_LIST_VIEW: {
      int deepest = 0;
      for (const auto& f : type.fields()) deepest = std::max(deepest, nesting_depth(*f->type()));
      return 1 + deepest;
    }
    default:
      return 0;
  }
}

}  // namespace sluice
