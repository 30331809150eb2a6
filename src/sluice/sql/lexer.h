// Splits SQL text into tokens with their positions; comments (-- and /* */) are skipped.
#pragma once

#include <arrow/result.h>

#include <vector>

#include "sluice/sql/source.h"
#include "sluice/sql/token.h"

namespace sluice::sql {

// Errors (unterminated string or comment, stray character) carry the formatted location.
arrow::Result<std::vector<Token>> tokenize(const SourceFile& file);

}  // namespace sluice::sql
