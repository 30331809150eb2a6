// The nesting limit of values and column types: every Delta reader sluice is tested with reads
// a table whose columns nest this deep (see README "Limits" for the measurements behind it).
#pragma once

#include <arrow/type_fwd.h>

namespace sluice {

// Levels of JSON objects/arrays in one record, counting the record's own top-level object;
// equally, levels of struct/array/map in a row type, counting the row itself (so a column's
// type nests at most kMaxNestingDepth - 1 levels).
inline constexpr int kMaxNestingDepth = 16;

// 0 for a primitive type, 1 + the deepest child for struct, list and map (a map counts once:
// it is one JSON object; its entries struct is Arrow's representation, not a level).
int nesting_depth(const arrow::DataType& type);

}  // namespace sluice
