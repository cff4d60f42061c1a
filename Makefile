# The two commands (see README.md): `make demo` and `make test`. Everything else is convenience.
BUILD      ?= build
TEST_BUILD ?= build-asan
BENCH_BUILD ?= build-bench
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
CMAKE_Q    := --log-level=WARNING
PREFIX     ?= /usr/local
DESTDIR    ?=

.PHONY: all bootstrap build demo test bench fuzz format lint symbols install clean

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake -S . -B $(BUILD) $(CMAKE_Q) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) >$(BUILD)/build.log 2>&1 || { cat $(BUILD)/build.log; exit 1; }

demo: build
	@scripts/demo $(BUILD)

# Sanitizer build with clang (ASan + UBSan, and libFuzzer for the fuzz smoke runs).
test: bootstrap
	@CC=clang cmake -S . -B $(TEST_BUILD) $(CMAKE_Q) -DCMAKE_BUILD_TYPE=Debug \
	  -DKURER_SANITIZE=ON -DKURER_FUZZ=ON >/dev/null
	@echo "Building with ASan+UBSan in $(TEST_BUILD)/ (log: $(TEST_BUILD)/build.log)"
	@cmake --build $(TEST_BUILD) -j $(JOBS) >$(TEST_BUILD)/build.log 2>&1 || { cat $(TEST_BUILD)/build.log; exit 1; }
	@echo "Building with gcc in $(BUILD)/ too, as make demo does (gcc warns where clang does not)"
	@cmake -S . -B $(BUILD) $(CMAKE_Q) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) >$(BUILD)/build.log 2>&1 || { cat $(BUILD)/build.log; exit 1; }
	@cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS)

bench: bootstrap
	@cmake -S . -B $(BENCH_BUILD) $(CMAKE_Q) -DCMAKE_BUILD_TYPE=Release -DKURER_TESTS=OFF >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS) >$(BENCH_BUILD)/build.log 2>&1 || { cat $(BENCH_BUILD)/build.log; exit 1; }
	@scripts/bench $(BENCH_BUILD)

# The long fuzz campaign, never part of `make test`: every libFuzzer target in turn for
# FUZZ_CPU_SECONDS of CPU time (default 1800) under nice; FUZZ_MERGE=1 merges what it found back
# into tests/fuzz/corpus, minimised. See tests/fuzz/README.md.
fuzz: bootstrap
	@FUZZ_BUILD=$(FUZZ_BUILD) JOBS=$(JOBS) scripts/fuzz

# Rewrites client/libkurer.sym (the symbols libkurer.so exports) from the KURER_EXPORT
# declarations of kurer.h and its public headers; ctest symbols_check fails until it matches.
symbols:
	@tests/check_symbols.sh --update .

# The release tree (build/), configured for PREFIX, installed under DESTDIR$(PREFIX): bin/kurer,
# bin/kurer-admin, bin/kurer-relay, lib/libkurer.so*, include/kurer/, lib/pkgconfig/kurer.pc,
# etc/kurer/relay.conf (the sysconfdir: /etc under /usr), lib/systemd/system/kurer-relay*.service.
install: bootstrap
	@cmake -S . -B $(BUILD) $(CMAKE_Q) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) >$(BUILD)/build.log 2>&1 || { cat $(BUILD)/build.log; exit 1; }
	@DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix $(PREFIX)

# Debian packages into dist/ (dpkg-buildpackage from a copy of the tree, lintian errors fail).
deb: bootstrap
	@scripts/deb dist

# The packages built and tried in a fresh dpkg root and a fresh Debian 12 root (also a ctest
# test, package_test, so `make test` runs it).
package-test: bootstrap
	@scripts/package-test

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

lint: build
	@cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	  --inline-suppr --suppress=missingIncludeSystem --suppress='*:$(CURDIR)/$(BUILD)/*' \
	  -DPROTOBUF_C_VERSION_NUMBER=1004001 -DPROTOBUF_C_MIN_COMPILER_VERSION=1000000 \
	  --std=c11 --project=$(BUILD)/compile_commands.json -i$(CURDIR)/$(BUILD)

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(BENCH_BUILD) $(FUZZ_BUILD)
