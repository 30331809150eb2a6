# Sourced by scripts/make-test.sh and scripts/asan-tests.sh: how sluice built with ASan + UBSan
# (build-fuzz/) runs in the tests. Every sanitizer report goes to a file in .run/asan/ (tests
# capture sluice's stderr, and a test expecting an error exit would not notice a report there);
# the scripts fail the run on any such file and print it. The folder is emptied here.
REPORTS=$ROOT/.run/asan
rm -rf "$REPORTS"; mkdir -p "$REPORTS"
# halt_on_error/abort: the first report ends the process with a non-zero status.
# handle_abort: std::terminate (an uncaught exception) and abort() leave a report and a trace.
# ARROW_DEFAULT_MEMORY_POOL=system: Arrow buffers come from malloc, so ASan sees their bounds
# (with jemalloc/mimalloc, overruns into neighbouring buffers would go unnoticed).
export ASAN_OPTIONS="log_path=$REPORTS/asan:halt_on_error=1:handle_abort=1:detect_leaks=1:check_initialization_order=1"
# Leaks inside third-party libraries at exit only, each with its reason: scripts/lsan.supp.
export LSAN_OPTIONS="suppressions=$ROOT/scripts/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="log_path=$REPORTS/ubsan:halt_on_error=1:print_stacktrace=1"
export ARROW_DEFAULT_MEMORY_POOL=system
export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer  # file:line in reports
# The values sluice's main() would set before executing itself again (src/sluice/cli/main.cc
# purge_freed_memory_at_once): set here, the second exec of every sluice process (ASan: ~0.16
# CPU-seconds each, half its start-up) does not happen; with ARROW_DEFAULT_MEMORY_POOL=system
# mimalloc is not used anyway. test_install.py tests the exec with an environment of its own
# (docs/decisions.md "CI time (9)").
export MIMALLOC_PURGE_DELAY=${MIMALLOC_PURGE_DELAY:-0} MIMALLOC_ALLOW_THP=${MIMALLOC_ALLOW_THP:-0}
