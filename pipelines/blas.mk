# Included by every pipeline Makefile after BIN is set: the OpenBLAS kernel family for this CPU
# (include/blasenv.h), found once and exported, so the pipeline's programs start on the right
# kernels without re-executing themselves. A user's own OPENBLAS_CORETYPE is kept.
ifndef OPENBLAS_CORETYPE
BLAS_CORE := $(shell $(BIN)/entk-show --blas 2>/dev/null)
ifneq ($(BLAS_CORE),)
export OPENBLAS_CORETYPE := $(BLAS_CORE)
endif
endif
