#!/usr/bin/env bash
# Builds every libFuzzer target (fuzz/<name>_fuzzer.cc) in build-fuzz/ (clang, ASan + UBSan,
# scripts/sanitizer-build.sh) and runs each from its seeds; any crash, hang (>30 s per input),
# leak or out-of-memory fails the run, after every target has had its turn. 30 s, not less:
# libFuzzer's timeout is wall time, and the slowest seed (fuzz/corpus/sql_frontend/
# atlimit_views.sql, 127 chained views) takes 6.4 s of CPU under ASan; on a loaded machine that
# was over 10 s.
#   scripts/fuzz.sh [seconds per target] [name[:seconds] ...]   (default 600 s, every target)
#   FUZZ_JOBS=n   targets fuzzed at the same time (default: the number of cores)
# Seeds: fuzz/corpus/<name>/ plus the folders listed in fuzz/<name>.seed-dirs (one a line,
# relative to the repository, e.g. the parser's golden files), read-only. The working corpus
# (.run/fuzz/<name>/corpus, kept between runs) grows; crash inputs go to .run/fuzz/<name>/.
set -euo pipefail
cd "$(dirname "$0")/.."
DEFAULT_SECONDS=${1:-600}
shift || true
JOBS=${FUZZ_JOBS:-$(nproc)}

specs=("$@")
if [ ${#specs[@]} -eq 0 ]; then
  for f in fuzz/*_fuzzer.cc; do n=$(basename "$f" .cc); specs+=("${n%_fuzzer}"); done
fi
names=(); secs=()
for s in "${specs[@]}"; do
  n=${s%%:*}
  [ -f "fuzz/${n}_fuzzer.cc" ] || { echo "[fuzz] no target $n (no fuzz/${n}_fuzzer.cc)" >&2; exit 2; }
  names+=("$n"); [[ $s == *:* ]] && secs+=("${s#*:}") || secs+=("$DEFAULT_SECONDS")
done

# Seeds of one target: its corpus folder (if any) and the folders its .seed-dirs lists.
seed_dirs() {
  local n=$1 d
  [ -d "fuzz/corpus/$n" ] && echo "fuzz/corpus/$n"
  if [ -f "fuzz/$n.seed-dirs" ]; then
    while read -r d; do
      [ -z "$d" ] || [[ $d == \#* ]] && continue
      [ -d "$d" ] || { echo "[fuzz] fuzz/$n.seed-dirs: no folder $d" >&2; return 1; }
      echo "$d"
    done < "fuzz/$n.seed-dirs"
  fi
}
for n in "${names[@]}"; do seed_dirs "$n" >/dev/null || exit 2; done
bash scripts/sanitizer-build.sh "${names[@]/%/_fuzzer}"

# Fuzzes one target; writes "ok <executions> <seconds>" or "failed <what> <input>" to result.
fuzz_one() {
  local n=$1 seconds=$2 work=.run/fuzz/$1 seeds rc=0 start
  mkdir -p "$work/corpus" "$work/artifacts"
  rm -f "$work/artifacts"/* "$work/result"
  mapfile -t seeds < <(seed_dirs "$n")
  start=$(date +%s)
  # Arrow buffers from malloc, so ASan sees their bounds (see scripts/asan-tests.sh).
  ARROW_DEFAULT_MEMORY_POOL=system ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer \
    "./build-fuzz/${n}_fuzzer" "$work/corpus" "${seeds[@]}" \
    -max_total_time="$seconds" -max_len=65536 -timeout=30 -rss_limit_mb=4096 \
    -artifact_prefix="$work/artifacts/" -print_final_stats=1 >"$work/last.log" 2>&1 || rc=$?
  local elapsed=$(( $(date +%s) - start ))
  local runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/last.log" | tail -1)
  if [ $rc -eq 0 ]; then
    echo "ok ${runs:-0} $elapsed" > "$work/result"
  else
    local input what
    input=$(ls "$work/artifacts"/* 2>/dev/null | head -1)
    what=$(basename "${input:-exit-status-$rc}"); what=${what%%-*}
    echo "failed $what ${input:-none}" > "$work/result"
  fi
}

# Up to JOBS targets at a time.
running=0
for i in "${!names[@]}"; do
  if [ "$running" -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
  echo "[fuzz] ${names[$i]}: ${secs[$i]} s"
  fuzz_one "${names[$i]}" "${secs[$i]}" &
  running=$((running + 1))
done
wait

total=0; failed=0
for n in "${names[@]}"; do
  work=.run/fuzz/$n
  read -r state a b < "$work/result" || state=failed
  if [ "$state" = ok ]; then
    echo "[fuzz] $n: $a executions in $b s, no crash"
    total=$((total + a))
  else
    failed=$((failed + 1))
    tail -60 "$work/last.log"
    echo "[fuzz] $n FAILED ($a): input $b; reproduce with build-fuzz/${n}_fuzzer $b"
    echo "[fuzz]   (fix it, then add the input to fuzz/corpus/$n/ so every build replays it)"
  fi
done
if [ $failed -gt 0 ]; then
  echo "[fuzz] $failed of ${#names[@]} targets FAILED"
  exit 1
fi
echo "[fuzz] all ${#names[@]} targets: $total executions, no crash"
