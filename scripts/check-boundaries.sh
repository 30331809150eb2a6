#!/usr/bin/env bash
# Module boundaries the compiler does not enforce, checked over the source tree (ctest
# `boundaries.*`): exec/ plans and runs queries without knowing Kafka, and librdkafka is used
# only behind kafka/ (the consumer yields RecordViews). One rule keeps a class of bugs closed
# rather than a boundary: text becomes a number only through common/text.h's checked parsers
# (std::stoll threw std::out_of_range past every handler on a long run of digits; strtoll and
# atoi take "12abc" as 12 and saturate or overflow silently), and so does one for std::regex,
# which recurses per character matched and overflows the stack on a long hostile text. Each
# rule: the files it covers, the folder or file it exempts, a regular expression they must not
# match, and what to do instead.
# Usage: scripts/check-boundaries.sh [repository root]   (exit 1 and a line per violation)
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"

# covered folder | exempt folder (or -) | forbidden (grep -E) | what to do instead
rules=(
  'src/sluice/exec|-|#include[[:space:]]*"sluice/(kafka/|format/kafka_)|exec/ must not include kafka/ or format/kafka_*: bind the source in pipeline/ (read_kafka_binding) and pass exec plain Arrow schemas and batches'
  'src|src/sluice/kafka|rd_kafka_[a-z_]+|RD_KAFKA_[A-Z_]+|RdKafka::|<librdkafka/|librdkafka types and headers belong in src/sluice/kafka/: read records through kafka::RecordView and the Consumer'
  'src|src/sluice/common/bounded_regex.h|std::regex_(match|search)[[:space:]]*\(|std::regex_match/regex_search recurse once per character matched and overflow the stack (SIGSEGV) on a long hostile text: use regex_match_bounded or regex_search_bounded (common/bounded_regex.h)'
  'src|-|std::sto[a-z]+[[:space:]]*\(|(^|[^A-Za-z0-9_])(atoi|atol|atoll|atof|strtol|strtoll|strtoul|strtoull|strtod|strtof|strtold|strtoimax|strtoumax)[[:space:]]*\(|std::sto*, ato* and strto* throw past every handler or take 12abc as 12: use parse_int64, parse_int32, parse_uint64 or parse_double (common/text.h), which refuse empty text, trailing characters and overflow with an error naming what was parsed'
)

violations=0
for rule in "${rules[@]}"; do
  covered="${rule%%|*}"; rest="${rule#*|}"
  exempt="${rest%%|*}"; rest="${rest#*|}"
  advice="${rest##*|}"; pattern="${rest%|*}"
  [[ -d "$root/$covered" ]] || continue
  while IFS= read -r hit; do
    file="${hit%%:*}"
    rel="${file#"$root"/}"
    if [[ "$exempt" != "-" && ( "$rel" == "$exempt" || "$rel" == "$exempt"/* ) ]]; then continue; fi
    rest_of_hit="${hit#*:}"
    echo "${rel}:${rest_of_hit%%:*}: ${advice}"
    violations=$((violations + 1))
  done < <(grep -rnE --include='*.h' --include='*.cc' "$pattern" "$root/$covered" || true)
done

if (( violations > 0 )); then
  echo "${violations} module boundary violation(s) (rules in scripts/check-boundaries.sh)" >&2
  exit 1
fi
echo "module boundaries hold"
