# Included by every pipeline Makefile after BIN is set: the OpenBLAS kernel family for this CPU
# (include/core/blasenv.h), found once and exported, so the pipeline's programs start on the right
# kernels without re-executing themselves. A user's own OPENBLAS_CORETYPE is kept.
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
