# Thin wrapper over the CMake presets: `make run` (main job) and `make test` set everything up themselves.
.PHONY: all deps deps-run configure configure-run build build-run test test-unprivileged run bench asan clean fuzz

PRESET ?= default
BUILD_DIR := build/$(PRESET)
COWBENCH := $(BUILD_DIR)/cowbench
WORKDIR ?= /var/tmp/cowbench-work
BUILD_BENCH ?= ON

all: build

# Every package (tests, benchmarks, fuzzer too); `deps-run` only what `make run` needs.
deps:
	@./scripts/install-deps.sh all

deps-run:
	@./scripts/install-deps.sh run

configure: deps
	@cmake --preset $(PRESET) -DCOWBENCH_BUILD_TESTS=ON -DCOWBENCH_BUILD_BENCH=$(BUILD_BENCH) >/dev/null

# A fresh build directory is configured by cmake/run_build.cmake: without the tests and
# benchmarks (their packages are not installed by `deps-run`), as a unity build of the libraries
# with precompiled headers and without debug information; an existing one keeps its
# configuration (`make test` turns the tests and benchmarks on).
configure-run: deps-run
	@cmake --preset $(PRESET) $(if $(wildcard $(BUILD_DIR)/CMakeCache.txt),,-C cmake/run_build.cmake) >/dev/null

build: configure
	@cmake --build --preset $(PRESET)

# Only the cowbench binary.
build-run: configure-run
	@cmake --build --preset $(PRESET) --target cowbench

# Every test; the root-only ones skip with a reason when not root.
test: build
	@ctest --preset $(PRESET) $(CTEST_ARGS)

test-unprivileged: build
	@ctest --preset $(PRESET) -LE root $(CTEST_ARGS)

# The main job: what this host supports, then the default matrix (every available backend,
# the default workloads on the synthetic `default` image, 4 repeats) into ./cowbench-out/.
run: build-run
	$(COWBENCH) doctor --workdir $(WORKDIR)
	$(COWBENCH) run --workdir $(WORKDIR) --out ./cowbench-out $(RUN_ARGS)

# The long benchmarks (minutes): snapshot operations, copy vs cp -a, block CoW, first-write latency, image import.
bench: build
	$(BUILD_DIR)/bench/bench_snapshotters --workdir=$(WORKDIR)
	$(BUILD_DIR)/bench/bench_copy
	$(BUILD_DIR)/bench/bench_block --workdir=$(WORKDIR)
	$(BUILD_DIR)/bench/bench_first_write --workdir=$(WORKDIR)
	$(BUILD_DIR)/bench/bench_import --workdir=$(WORKDIR)

# A long libFuzzer run over the layer reader and applier (FUZZ_SECONDS, default 600); the corpus grows in build/fuzz-work.
FUZZ_SECONDS ?= 600
fuzz: build
	./fuzz/run_fuzz.sh $(BUILD_DIR)/fuzz/fuzz_layer_reader $(BUILD_DIR)/fuzz/fuzz_corpus build/fuzz-work $(FUZZ_SECONDS)

# AddressSanitizer + UndefinedBehaviorSanitizer build and tests.
asan:
	@$(MAKE) test PRESET=asan BUILD_BENCH=OFF

clean:
	rm -rf build
