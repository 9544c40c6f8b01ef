# Included by every pipeline Makefile after OUT and BIN are set: what makes runs on one OUT safe
# side by side and after a kill.
#  - Every target is written atomically: entk's -o writes FILE.tmp.PID and renames it, and the
#    recipes here write $@.tmp.$$$$ (their shell's PID) and rename. Two runs on one OUT never see
#    each other's half-written files, and both end with the same bytes.
#  - The summary and report steps write several files in place (series.tsv, plots, ...), so they
#    run under an exclusive lock on OUT/.lock (flock(1), util-linux): one run's after the other's,
#    never interleaved.
#  - No .DELETE_ON_ERROR: no target is ever half written, and deleting a target after an error
#    could delete the file a concurrent run had just finished.
#  - A run killed with -9 leaves temporary files (NAME.tmp.PID) that nothing will rename: each run
#    starts by removing those whose writer is no longer running, in OUT (pipelines/litter.sh) and
#    in the entk cache (entk-cache gc with no budget removes only such litter).
LOCKED := flock $(OUT)/.lock
# this make's PID, for a temporary name that several recipe lines share (and litter.sh can judge)
RUN := $(shell echo $$PPID)
$(shell bash $(ROOT)/pipelines/litter.sh $(OUT) >/dev/null 2>&1; $(BIN)/entk-cache -q gc >/dev/null 2>&1)
