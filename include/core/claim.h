/* claim: "this process is computing that" markers beside the cache, so that processes sharing a
 * cache directory (make -j, GNU parallel job slots, machines with the directory mounted) split a
 * piece of work between them instead of each doing all of it.
 *
 * A claim is the file DIR/claims/<key> holding "host pid", created with O_EXCL. It is taken over
 * when its process is gone: on the same host when kill(pid, 0) says so (kill -9 included), from
 * another host when the file has not been touched for CLAIM_STALE_SECONDS (claim_touch keeps a
 * live one fresh). Without a cache directory every claim succeeds: there is nobody to share with. */
#ifndef ENTK_CLAIM_H
#define ENTK_CLAIM_H
#include "core/hash.h"

#define CLAIM_STALE_SECONDS 600

/* 1 if the claim is now this process's (taken, or taken over from a dead holder), 0 if a live
 * process holds it. */
int claim_take(const entk_key *key);
/* Refreshes the claim's time stamp (for work that takes long). */
void claim_touch(const entk_key *key);
void claim_drop(const entk_key *key);
#endif
