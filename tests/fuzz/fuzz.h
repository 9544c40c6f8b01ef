/* fuzz.h: what every libFuzzer harness of entk's decoders shares (test scaffolding, not product).
 *
 * entk's decoders answer bad input with entk_die, which exits. The fuzz build (-DENTK_FUZZ, make
 * fuzz) makes entk_die longjmp back here instead (err.h, entk_die_jump), so a refused input is an
 * ordinary outcome and only a crash, a sanitizer report or a hang is a finding. What the decoder
 * had allocated when it died is still allocated; the harness frees it: every allocation made
 * while an input runs is recorded through the sanitizer's malloc/free hooks, and after a die the
 * ones still live are freed (after a normal return they are the decoder's own business, and
 * LeakSanitizer reports any it forgot). Inputs reach file-based decoders as a memfd, through its
 * /proc/self/fd path, so the code under test is the same that reads users' files.
 *
 * A harness defines fuzz_one(data, size) and, optionally, fuzz_cleanup() for what the die left
 * that is not memory (a file descriptor, a mapping); FUZZ_MAIN wires them to libFuzzer. */
#ifndef ENTK_FUZZ_H
#define ENTK_FUZZ_H
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sanitizer/allocator_interface.h>
#include "core/cache.h"
#include "core/err.h"

#define FUZZ_SLOTS (1u << 20)          /* open-addressing table of live allocations */
#define FUZZ_LOG (1u << 18)            /* allocations of one input that can be freed after a die */

static const volatile void *fuzz_table[FUZZ_SLOTS];
static unsigned fuzz_gen[FUZZ_SLOTS], fuzz_cur = 1;
static const volatile void *fuzz_log[FUZZ_LOG];
static unsigned fuzz_nlog;
static int fuzz_tracking;

static unsigned fuzz_slot(const volatile void *p) { return (unsigned)(((uintptr_t)p >> 4) * 0x9E3779B1u) & (FUZZ_SLOTS - 1); }

/* called inside the allocator: no allocation, no locks */
static void fuzz_malloc_hook(const volatile void *p, size_t n) {
    (void)n;
    if (!fuzz_tracking || !p || fuzz_nlog == FUZZ_LOG) return;
    unsigned i = fuzz_slot(p);
    while (fuzz_gen[i] == fuzz_cur && fuzz_table[i]) i = (i + 1) & (FUZZ_SLOTS - 1);
    fuzz_table[i] = p;
    fuzz_gen[i] = fuzz_cur;
    fuzz_log[fuzz_nlog++] = p;
}

static int fuzz_find(const volatile void *p, unsigned *at) {
    for (unsigned i = fuzz_slot(p); fuzz_gen[i] == fuzz_cur; i = (i + 1) & (FUZZ_SLOTS - 1))
        if (fuzz_table[i] == p) { *at = i; return 1; }
    return 0;
}

static void fuzz_free_hook(const volatile void *p) {
    unsigned i;
    if (fuzz_tracking && p && fuzz_find(p, &i)) fuzz_table[i] = NULL;   /* deleted, probing goes on */
}

static jmp_buf fuzz_jb;
static int fuzz_one(const uint8_t *data, size_t size);
static void fuzz_cleanup(void);

/* The input as a file: a memfd reused for every input, reached by its /proc path. */
__attribute__((unused)) static const char *fuzz_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("entk-fuzz", 0);
        if (fd < 0) { perror("memfd_create"); abort(); }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) { perror("memfd"); abort(); }
    return path;
}

#define FUZZ_MAIN                                                                                   \
    int LLVMFuzzerInitialize(int *argc, char ***argv) {                                             \
        (void)argc; (void)argv;                                                                      \
        entk_init("entk-fuzz");                                                                      \
        entk_quiet = 1;                                                                              \
        cache_init("off");                                                                           \
        __sanitizer_install_malloc_and_free_hooks(fuzz_malloc_hook, fuzz_free_hook);                 \
        return 0;                                                                                    \
    }                                                                                                \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {                                  \
        fuzz_cur++;                                                                                  \
        fuzz_nlog = 0;                                                                               \
        fuzz_tracking = 1;                                                                           \
        entk_die_jump(&fuzz_jb, getenv("ENTK_FUZZ_VERBOSE") == NULL);                                \
        if (setjmp(fuzz_jb) == 0) {                                                                  \
            fuzz_one(data, size);                                                                    \
        } else {                                                                                     \
            fuzz_cleanup();                                                                          \
            fuzz_tracking = 0;                                                                       \
            unsigned at;                                                                             \
            for (unsigned k = 0; k < fuzz_nlog; k++)                                                 \
                if (fuzz_find(fuzz_log[k], &at)) { fuzz_table[at] = NULL; free((void *)fuzz_log[k]); } \
        }                                                                                            \
        fuzz_tracking = 0;                                                                           \
        entk_die_jump(NULL, 0);                                                                      \
        return 0;                                                                                    \
    }
#endif
