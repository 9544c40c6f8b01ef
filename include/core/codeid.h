/* codeid: the identity of the code that computes a result, for the keys that name results.
 *
 * A cache entry or a stream key that names only the inputs and options of a computation would
 * serve a stale result after the computation itself changed. So every key also names the code:
 *   lib   a hash of lib/, include/, the Makefile, the compiler's version and the flags, which the
 *         Makefile writes to build/entk-codeid.h (rewritten only when it changes, so that only
 *         codeid.o rebuilds);
 *   tool  a hash of the program's own source (bin/entk-X.c), which the Makefile passes to each
 *         program as -DENTK_TOOL_ID and cli_start hands over;
 *   blas  the OpenBLAS kernel family and build in use: kernels of different families sum in
 *         different orders, so their results differ in the last bits (README "Kernels").
 * No hand-bumped version string is needed: a changed source is a changed key. */
#ifndef ENTK_CODEID_H
#define ENTK_CODEID_H
#include "core/hash.h"

void codeid_set_tool(const char *tool_id);   /* cli_start does this */
const char *codeid_lib(void);
const char *codeid_tool(void);               /* "" in a program built without one (tests/tools) */
const char *codeid_blas(void);               /* e.g. "Haswell OpenBLAS 0.3.21 ..." */
/* Mixes the code identity into a key: lib and blas always, the program's own source too with
 * with_tool (results whose computation the program's own code shapes; a lib-only computation such
 * as a compiled tokenizer is the same whichever program asks for it). */
void keybuilder_code(keybuilder *kb, int with_tool);
#endif
