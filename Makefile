# Thin wrapper over CMake. `make demo` and `make test` are all a new user needs.
BUILD     ?= build
JOBS      ?= $(shell nproc)
PREFIX    ?= /usr/local
CMAKE_ARGS ?=
# CI (CI=true) builds with warnings as errors.
ifeq ($(CI),true)
  CMAKE_ARGS += -DXPROC_WERROR=ON
endif

.PHONY: all deps configure build demo test bench install fuzz clean format check-aarch64

all: build

# install-deps is a no-op when everything is present.
deps:
	@scripts/install-deps.sh --check >/dev/null 2>&1 || scripts/install-deps.sh

# Configure once; later runs only build incrementally.
$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

configure: deps $(BUILD)/CMakeCache.txt

# BUILD_TARGETS builds only those targets (CI's ThreadSanitizer pass needs two test programs).
BUILD_TARGETS ?=
build: configure
	cmake --build $(BUILD) -j $(JOBS) $(if $(BUILD_TARGETS),--target $(BUILD_TARGETS))

demo: build
	@scripts/demo.sh $(BUILD)

# CTEST_ARGS selects tests, e.g. CTEST_ARGS="-R '^Ring\.'"
CTEST_ARGS ?=
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600 $(CTEST_ARGS)

bench: deps
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)
	cmake -S . -B $(BUILD) -DXPROC_BUILD_BENCH=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	@rc=0; \
	  $(BUILD)/bench/xpmap_bench --benchmark_counters_tabular=true || rc=1; \
	  $(BUILD)/bench/ring_bench --benchmark_counters_tabular=true || rc=1; \
	  $(BUILD)/bench/memory_bench --benchmark_counters_tabular=true || rc=1; \
	  $(BUILD)/bench/xstack_bench --benchmark_counters_tabular=true || rc=1; \
	  $(BUILD)/bench/mq_bench --benchmark_counters_tabular=true || rc=1; \
	  exit $$rc

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# libFuzzer targets, built with clang in their own directory: make fuzz FUZZ_SECONDS=600
FUZZ_SECONDS ?= 60
fuzz: deps
	CC=clang-19 CXX=clang++-19 cmake -S . -B build-fuzz -DXPROC_FUZZ=ON -DXPROC_BUILD_TESTS=OFF \
	  -DXPROC_BUILD_TOOLS=OFF -DXPROC_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF
	cmake --build build-fuzz -j $(JOBS)
	scripts/run-fuzz.sh build-fuzz $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp' '*.h' '*.c')

clean:
	rm -rf $(BUILD)

# The aarch64 code paths compile (syntax and warnings, with Debian's cross compiler); CI runs it.
check-aarch64: deps
	scripts/check-aarch64.sh
