/* cache: a content-addressed store of expensive intermediates (Jacobian blocks, Grams, compiled
 * tokenizers) that cannot lie.
 *
 * Entries live at DIR/objects/<2 hex>/<30 hex>, named by a key that hashes everything the bytes
 * depend on, by content (the data actually read, files by their content hash) and the code that
 * computed them (core/codeid.h). Like git's object store, an entry is written to a temporary name
 * (PATH.tmp.PID) and renamed, so a crash never leaves a half entry.
 *
 * What a hit returns is verified three ways before it is used:
 *   1. the entry's header: magic, the key it was stored under, the lengths;
 *   2. its authenticator: XXH3-128 keyed with this cache's secret (DIR/secret, 192 random bytes
 *      made once, mode 0600) over key, descriptor and payload. A checksum anyone can recompute
 *      would accept a forged or copied-in entry; the keyed one accepts only entries this cache
 *      wrote. (XXH3 is not a cryptographic MAC: it stops accidents, entries from elsewhere and
 *      forgeries made without the secret, not someone who can read DIR/secret -- who could
 *      write DIR anyway.)
 *   3. the caller's check of the payload (cache_check_fn): the frames this request expects
 *      (names, dtypes, shapes, meta).
 * An entry that fails is reported on stderr even under -q (a repair must never be silent), removed
 * and recomputed. A hit touches the entry's mtime, so `entk-cache gc` trims least recently used
 * first. Each entry carries a small descriptor (producer, what it is, what its key was derived
 * from, when it was made) for `entk-cache ls`.
 * DIR is --cache-dir, else $ENTK_CACHE_DIR, else ~/.cache/entk. "off" disables caching. */
#ifndef ENTK_CACHE_H
#define ENTK_CACHE_H
#include <stddef.h>
#include <stdint.h>
#include "core/hash.h"

typedef struct {
    const char *what;   /* e.g. "jacobian block W1 rows 0..511 factored f64" */
    const char *from;   /* what the key was derived from, e.g. "model <hash> data <content> code <id>" */
} cache_desc;

/* Checks a hit's payload against what the request expects: 1 if it is, else 0 with why set. */
typedef int (*cache_check_fn)(const void *payload, size_t n, const void *arg, char *why, size_t nwhy);

void cache_init(const char *dir_option);
int cache_enabled(void);
/* 1 and a malloc'd copy of the payload on a verified hit (check may be NULL); 0 on a miss. */
int cache_get(const entk_key *key, cache_check_fn check, const void *arg, void **data, size_t *n);
/* As cache_get, for a lookup that is not of a result (entk-gram's hints): not counted as a hit
 * or a miss in the report. */
int cache_get_hint(const entk_key *key, cache_check_fn check, const void *arg, void **data, size_t *n);
void cache_put(const entk_key *key, const cache_desc *d, const void *data, size_t n);
void cache_put_hint(const entk_key *key, const cache_desc *d, const void *data, size_t n);   /* not counted */
/* 1 if an entry is stored under key (not verified: cache_get does that). */
int cache_has(const entk_key *key);
/* Removes an entry (no error if absent): for intermediates folded into a larger entry. */
void cache_remove(const entk_key *key);
/* "cache: H hits, M misses, S stored in DIR" on stderr (with the refused entries, if any). */
void cache_report(void);
const char *cache_dir(void);

/* ---- the entry format, for the plumbing (entk-cache) ----
 * magic "ENTKCAC2" | key (32 hex) | descriptor length (u64 LE) | payload length (u64 LE) |
 * authenticator (16) | descriptor | payload */
#define CACHE_MAGIC "ENTKCAC2"
#define CACHE_HDR (8 + 32 + 8 + 8 + 16)
#define CACHE_DESC_MAX 4096
#define CACHE_SECRET_BYTES 192
typedef struct {
    char key[33];
    char *desc;       /* NUL-terminated */
    size_t ndesc;
    void *data;
    size_t n;
} cache_raw;
/* Reads and verifies the entry at path in cache cdir (key_hex: the key it must be stored under,
 * or NULL): 0 and e filled if it verifies, 1 with why set if it does not, -1 if it cannot be
 * opened. */
int cache_read_entry(const char *path, const char *cdir, const char *key_hex, cache_raw *e, char *why, size_t nwhy);
void cache_raw_free(cache_raw *e);
/* The secret of cache cdir, made on first use. */
const unsigned char *cache_secret(const char *cdir);

#endif
