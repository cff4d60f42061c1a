# The two commands (see README.md): `make demo` and `make test`. Everything else is convenience.
BUILD      ?= build
TEST_BUILD ?= build-asan
BENCH_BUILD ?= build-bench
JOBS       ?= $(shell nproc)
CMAKE_Q    := --log-level=WARNING

.PHONY: all bootstrap build demo test bench format lint clean

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake -S . -B $(BUILD) $(CMAKE_Q) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory -s

demo: build
	@scripts/demo $(BUILD)

# Sanitizer build with clang (ASan + UBSan, and libFuzzer for the fuzz smoke runs).
test: bootstrap
	@CC=clang cmake -S . -B $(TEST_BUILD) $(CMAKE_Q) -DCMAKE_BUILD_TYPE=Debug \
	  -DKURER_SANITIZE=ON -DKURER_FUZZ=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS) -- --no-print-directory -s
	@cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS)

bench: bootstrap
	@cmake -S . -B $(BENCH_BUILD) $(CMAKE_Q) -DCMAKE_BUILD_TYPE=Release -DKURER_TESTS=OFF >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS) -- --no-print-directory -s
	@scripts/bench $(BENCH_BUILD)

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

lint: build
	@cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	  --inline-suppr --suppress=missingIncludeSystem --std=c11 \
	  --project=$(BUILD)/compile_commands.json -i$(BUILD)

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(BENCH_BUILD)
