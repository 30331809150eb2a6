#!/usr/bin/env bash
# Module boundaries the compiler does not enforce, checked over the source tree (ctest
# `boundaries.*`): exec/ plans and runs queries without knowing Kafka, and librdkafka is used
# only behind kafka/ (the consumer yields RecordViews). Each rule: the files it covers, the
# files it exempts, a regular expression they must not match, and what to do instead.
# Usage: scripts/check-boundaries.sh [repository root]   (exit 1 and a line per violation)
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"

# covered folder | exempt folder (or -) | forbidden (grep -E) | what to do instead
rules=(
  'src/sluice/exec|-|#include[[:space:]]*"sluice/(kafka/|format/kafka_)|exec/ must not include kafka/ or format/kafka_*: bind the source in pipeline/ (read_kafka_binding) and pass exec plain Arrow schemas and batches'
  'src|src/sluice/kafka|rd_kafka_[a-z_]+|RD_KAFKA_[A-Z_]+|RdKafka::|<librdkafka/|librdkafka types and headers belong in src/sluice/kafka/: read records through kafka::RecordView and the Consumer'
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
    if [[ "$exempt" != "-" && "$rel" == "$exempt"/* ]]; then continue; fi
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
