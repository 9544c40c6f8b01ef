/* cachefs: the cache's plumbing, as git has it (entk-cache ls, fsck, gc).
 *
 * The cache (cache.h) only ever adds entries; something has to list them, check them all and
 * collect what is no longer wanted: temporary files whose writer died (a run killed while storing
 * leaves NAME.tmp.PID), empty fan-out directories, and entries past a size or age budget, least
 * recently used first (a hit touches its entry's mtime). */
#ifndef ENTK_CACHEFS_H
#define ENTK_CACHEFS_H
#include <stdint.h>

typedef struct {
    char key[33];
    char path[4400];
    uint64_t size;          /* bytes on disk */
    int64_t created, used;  /* unix seconds: from the descriptor; last hit or store (mtime) */
    char producer[64];
    char what[1024], from[1024];
    char bad[300];          /* why the entry does not verify ("" if it does, or if not verified) */
} cachefs_entry;

/* Every entry of cache dir (verify: each is also read whole and checked as a hit would be,
 * filling bad); *n set; NULL when there are none. Sorted by last use, oldest first. */
cachefs_entry *cachefs_list(const char *dir, int verify, long *n);
/* Litter: temporary files (NAME.tmp.PID) whose writer is no longer running, and empty fan-out
 * directories. Removes them unless dry_run; returns how many, adding their bytes to *bytes. */
long cachefs_litter(const char *dir, int dry_run, uint64_t *bytes);
/* Removes entry e (its file); 0 on success. */
int cachefs_remove(const cachefs_entry *e);
/* "1.5G", "512M", "10K", "123" -> bytes; "30d", "12h", "45m", "90s" -> seconds; -1 if malformed. */
int64_t cachefs_parse_size(const char *s);
int64_t cachefs_parse_age(const char *s);
/* bytes and seconds for people: "1.5G", "3d" */
void cachefs_human_size(uint64_t b, char *out, int n);
void cachefs_human_age(int64_t s, char *out, int n);
#endif
