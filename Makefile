# Thin wrapper over the CMake presets: `make run` (main job) and `make test` set everything up themselves.
.PHONY: all deps configure build test test-unprivileged run bench asan clean fuzz

PRESET ?= default
BUILD_DIR := build/$(PRESET)
COWBENCH := $(BUILD_DIR)/cowbench
WORKDIR ?= /var/tmp/cowbench-work

all: build

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build --preset $(PRESET)

# Every test; the root-only ones skip with a reason when not root.
test: build
	@ctest --preset $(PRESET) $(CTEST_ARGS)

test-unprivileged: build
	@ctest --preset $(PRESET) -LE root $(CTEST_ARGS)

# The main job: what this host supports, then the default matrix (every available backend,
# the default workloads on the synthetic `default` image, 4 repeats) into ./cowbench-out/.
run: build
	$(COWBENCH) doctor --workdir $(WORKDIR)
	$(COWBENCH) run --workdir $(WORKDIR) --out ./cowbench-out $(RUN_ARGS)

# The long benchmarks (minutes): snapshot operations, copy vs cp -a, block CoW, image import.
bench: build
	$(BUILD_DIR)/bench/bench_snapshotters --workdir=$(WORKDIR)
	$(BUILD_DIR)/bench/bench_copy
	$(BUILD_DIR)/bench/bench_block --workdir=$(WORKDIR)
	$(BUILD_DIR)/bench/bench_import --workdir=$(WORKDIR)

# A long libFuzzer run over the layer reader and applier (FUZZ_SECONDS, default 600); the corpus grows in build/fuzz-work.
FUZZ_SECONDS ?= 600
fuzz: build
	./fuzz/run_fuzz.sh $(BUILD_DIR)/fuzz/fuzz_layer_reader $(BUILD_DIR)/fuzz/fuzz_corpus build/fuzz-work $(FUZZ_SECONDS)

# AddressSanitizer + UndefinedBehaviorSanitizer build and tests.
asan:
	@$(MAKE) test PRESET=asan

clean:
	rm -rf build
