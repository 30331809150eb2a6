# sluice: `make run` (demo) and `make test` (everything) set up what is missing first.
# `make test` = unit + integration (gcc Release build), then test-asan and fuzz-ci (the clang
# ASan + UBSan build in build-fuzz/, docs/decisions.md).
SHELL := /bin/bash
BUILD_TYPE ?= Release
BUILD_DIR ?= $(if $(filter Debug,$(BUILD_TYPE)),build-debug,build)

.PHONY: all setup build unit integration test test-asan run bench fuzz fuzz-ci clean distclean

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

test: unit integration test-asan fuzz-ci

run: build
	scripts/demo.sh

# Every fuzz target FUZZ_SECONDS (default 600) s; fuzz-ci: 60 s each, as CI runs them.
fuzz:
	scripts/fuzz.sh $(or $(FUZZ_SECONDS),600)

fuzz-ci:
	scripts/fuzz.sh 60

# Delta append vs deltalake, then Kafka -> bronze -> silver throughput and continuous latency
# (starts its own broker on BENCH_KAFKA_PORT). Results go to BENCHMARKS.md by hand.
BENCH_KAFKA_PORT ?= 49092
bench: build
	.venv/bin/python bench/delta_append_bench.py
	.venv/bin/python bench/kafka_pipeline_bench.py --port $(BENCH_KAFKA_PORT)
	.venv/bin/python bench/window_bench.py --port $(BENCH_KAFKA_PORT)
	.venv/bin/python bench/stream_join_bench.py --port $(BENCH_KAFKA_PORT)

clean:
	rm -rf build build-debug build-fuzz

distclean: clean
	rm -rf .venv .deps .run examples/*/data
