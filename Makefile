# sluice: `make run` (demo) and `make test` (everything) set up what is missing first.
# `make test` = both builds, both unit test runs, each integration test once (the ASan suite
# or the gcc suite, side by side), then fuzz-ci (scripts/make-test.sh).
SHELL := /bin/bash
BUILD_TYPE ?= Release
BUILD_DIR ?= $(if $(filter Debug,$(BUILD_TYPE)),build-debug,build)

.PHONY: all setup build unit integration test test-asan run bench bench-nexmark fuzz fuzz-ci install dist clean distclean

all: build

setup:
	@scripts/setup.sh

build: setup
	@[ -f $(BUILD_DIR)/build.ninja ] || cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	@cmake --build $(BUILD_DIR)

unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j2

integration: build
	SLUICE_BIN=$(CURDIR)/$(BUILD_DIR)/sluice scripts/integration-tests.sh

# Unit tests, fuzz corpora and the fast integration tests (not marked slow) with ASan + UBSan.
test-asan:
	scripts/asan-tests.sh

# Set-up, then one build (clang ASan + UBSan, build-fuzz/): its sluice first, then side by side
# the quick suite (tests not marked slow), the long suite (the slow tests and the modules
# conftest.py's LONG_SUITE_MODULES names) and the rest of the build with the unit tests and fuzz
# corpora (ctest); each test runs once. Then fuzz-ci, alone: its per-input limit is wall time.
# Each phase prints when it ended (scripts/make-test.sh, docs/decisions.md "CI time (7)").
test:
	@scripts/make-test.sh

# The demo (scripts/demo.sh): generated events through examples/medallion, continuously, with the
# server on, until Ctrl-C; DEMO_SECONDS=N stops by itself, DEMO_SERVE=ADDR:PORT, DEMO_RATE=R.
run: build
	scripts/demo.sh

# Every fuzz target FUZZ_SECONDS (default 600) s; fuzz-ci: 60 s each, as CI runs them.
fuzz:
	scripts/fuzz.sh $(or $(FUZZ_SECONDS),600)

# fuzz-ci: every target 60 s, all at once (one minute of wall time in make test instead of four;
# each target gets a share of the two cores, so fewer executions than `make fuzz` gives it).
fuzz-ci:
	FUZZ_JOBS=$(words $(wildcard fuzz/*_fuzzer.cc)) scripts/fuzz.sh 60

# Delta append vs deltalake, then Kafka -> bronze -> silver throughput and continuous latency
# (starts its own broker on BENCH_KAFKA_PORT), then the same bronze + silver in Spark Structured
# Streaming side by side (SPARK_BENCH_EVENTS events, best of SPARK_BENCH_REPEAT runs of each).
# Results go to BENCHMARKS.md by hand.
BENCH_KAFKA_PORT ?= 49092
SPARK_BENCH_EVENTS ?= 5000000
SPARK_BENCH_REPEAT ?= 2
# Rows of the data skipping bench (a point query before and after Z-order); smaller for trials.
SKIPPING_BENCH_ROWS ?= 10000000
bench: build
	.venv/bin/python bench/delta_append_bench.py
	.venv/bin/python bench/kafka_pipeline_bench.py --port $(BENCH_KAFKA_PORT)
	.venv/bin/python bench/window_bench.py --port $(BENCH_KAFKA_PORT)
	.venv/bin/python bench/stream_join_bench.py --port $(BENCH_KAFKA_PORT)
	.venv/bin/python bench/auto_compaction_bench.py --port $(BENCH_KAFKA_PORT)
	.venv/bin/python bench/spark_side_by_side.py --port $(BENCH_KAFKA_PORT) --events $(SPARK_BENCH_EVENTS) --repeat $(SPARK_BENCH_REPEAT)
	.venv/bin/python bench/data_skipping_bench.py --rows $(SKIPPING_BENCH_ROWS)
	$(MAKE) bench-nexmark

# Nexmark q0-q5, q7, q8 in sluice SQL, each checked against a DuckDB oracle, CPU per event beside
# Flink's published per-core figures; NEXMARK_SPARK=1 adds q0-q3 in Spark Structured Streaming.
NEXMARK_EVENTS ?= 1000000
bench-nexmark: build
	.venv/bin/python bench/nexmark/nexmark_bench.py --port $(BENCH_KAFKA_PORT) --events $(NEXMARK_EVENTS) $(if $(NEXMARK_SPARK),--spark)

# `make install PREFIX=/opt/sluice`: PREFIX/bin/sluice + PREFIX/lib/ (the libraries it loads that
# a fresh Debian 12 lacks, found relative to the binary), movable as a whole; `make dist`: the
# same as dist/sluice-<version>-linux-<arch>.tar.gz. Neither rebuilds what `make build` built.
install: build
	@[ -n "$(PREFIX)" ] || { echo "make install: say where, e.g. make install PREFIX=/opt/sluice" >&2; exit 2; }
	scripts/install.sh $(BUILD_DIR) "$(PREFIX)"

dist: build
	scripts/dist.sh $(BUILD_DIR)

clean:
	rm -rf build build-debug build-fuzz build-unity-check

distclean: clean
	rm -rf .venv .deps .run dist examples/*/data
