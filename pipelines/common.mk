# Included first by every pipeline Makefile (pipelines/<name>/Makefile, run with make -C, so the
# path is ../common.mk): the shell, the paths, the OpenBLAS set-up, the stamp function, `clean`,
# and `seeds` for pipelines that set SEED_COLUMNS. A pipeline sets its own variables after the
# include, and includes pipelines/runs.mk once OUT is set; the default goal stays `all`.
# No .DELETE_ON_ERROR: see runs.mk.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
.DEFAULT_GOAL := all

ROOT    := $(abspath ../..)
BIN     ?= $(ROOT)/bin
# -q: the programs' log lines off (Q= shows them)
Q       ?= -q

# The OpenBLAS kernel family for this CPU (include/core/blasenv.h), found once and exported, so the
# pipeline's programs start on the right kernels without re-executing themselves. A user's own
# OPENBLAS_CORETYPE is kept.
ifndef OPENBLAS_CORETYPE
BLAS_CORE := $(shell $(BIN)/entk-show --blas 2>/dev/null)
ifneq ($(BLAS_CORE),)
export OPENBLAS_CORETYPE := $(BLAS_CORE)
endif
endif
# One OpenBLAS thread per program: pipelines run their programs side by side (make -j, the stages of
# a pipe), and OpenBLAS's spinning worker threads then fight over the cores: an entk-jacobian run over
# the Transformer's 201 checkpoints made 204,719 sched_yield calls and spent as long in the kernel
# as in its own code. A user's own OPENBLAS_NUM_THREADS is kept.
export OPENBLAS_NUM_THREADS ?= 1

# $(call stamp,FILE,TEXT): FILE is rewritten (when make reads the Makefile) only if TEXT changed, so
# that changing a variable rebuilds what depends on FILE
stamp = $(shell mkdir -p $(dir $(1)) && { echo '$(2)' | cmp -s - $(1) || echo '$(2)' > $(1); })

clean:
	rm -rf $(OUT)

# The same run once per seed, one OUT each (OUT/seed-N), and OUT/seeds.tsv tabulating the
# summary.json keys SEED_COLUMNS of each: make seeds SEEDS="0 1 2". What SEED varies is the
# pipeline's own (its Makefile says).
SEEDS ?= 0 1 2
seeds:
	@[ -n "$(SEED_COLUMNS)" ] || { echo "this pipeline has no seeds target (no SEED_COLUMNS)" >&2; exit 2; }
	for s in $(SEEDS); do $(MAKE) --no-print-directory OUT=$(OUT)/seed-$$s SEED=$$s all || exit 1; done
	@{ echo -n seed; for k in $(SEED_COLUMNS); do echo -n "	$$k"; done; echo; } > $(OUT)/seeds.tsv.tmp.$(RUN)
	@for s in $(SEEDS); do echo -n "$$s" >> $(OUT)/seeds.tsv.tmp.$(RUN); \
	  for k in $(SEED_COLUMNS); do echo -n "	$$(sed -n "s/^  \"$$k\": \(.*\),\?$$/\1/p" $(OUT)/seed-$$s/summary.json | sed 's/,$$//')" >> $(OUT)/seeds.tsv.tmp.$(RUN); done; \
	  echo >> $(OUT)/seeds.tsv.tmp.$(RUN); done
	@mv $(OUT)/seeds.tsv.tmp.$(RUN) $(OUT)/seeds.tsv && cat $(OUT)/seeds.tsv

.PHONY: all clean seeds
