/* cache: a content-addressed store of expensive intermediates (Jacobian blocks, Grams).
 *
 * Entries live at DIR/objects/<2 hex>/<30 hex>, named by a key that hashes everything that
 * determines the bytes (hash.h). Like git's object store: written to a temporary name and renamed,
 * so a crash never leaves a half entry; on read the stored key, length and an xxh3-128 checksum of
 * the payload are verified, and a corrupt entry is reported on stderr, removed and recomputed.
 * DIR is --cache-dir, else $ENTK_CACHE_DIR, else ~/.cache/entk. "off" disables caching. */
#ifndef ENTK_CACHE_H
#define ENTK_CACHE_H
#include <stddef.h>
#include "core/hash.h"

void cache_init(const char *dir_option);
int cache_enabled(void);
/* 1 and a malloc'd copy of the payload on a verified hit; 0 on a miss. */
int cache_get(const entk_key *key, void **data, size_t *n);
void cache_put(const entk_key *key, const void *data, size_t n);
/* 1 if an entry is stored under key (not verified: cache_get does that). */
int cache_has(const entk_key *key);
/* Removes an entry (no error if absent): for intermediates folded into a larger entry. */
void cache_remove(const entk_key *key);
/* "cache: H hits, M misses, C corrupt entries replaced (DIR)" on stderr. */
void cache_report(void);
const char *cache_dir(void);
#endif
