/* entk-cache: the cache's plumbing (list, verify, collect), as git has ls-files, fsck and gc. */
#include "core/cache.h"
#include "core/cachefs.h"
#include "core/cli.h"
#include "core/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *usage =
    "Usage: entk-cache ls [--verify]\n"
    "       entk-cache fsck [--repair]\n"
    "       entk-cache gc [--max-size SIZE] [--max-age AGE] [--dry-run]\n"
    "The entk cache (README, Cache): DIR/objects/<2 hex>/<30 hex>, one entry per Jacobian block, Gram,\n"
    "Gram hint or compiled tokenizer.\n"
    "  ls      one line per entry, least recently used first: key, size, last used, made, producer,\n"
    "          what it is, what its key was derived from (tab-separated); a total on stderr.\n"
    "          --verify also checks each entry whole and adds why it is bad (or ok)\n"
    "  fsck    checks every entry as a hit would (its header, its authenticator under the cache's\n"
    "          secret, its payload's frames and their checksums) and names each bad one on stdout;\n"
    "          exit 3 if any is bad. --repair removes them (exit 0 once they are gone)\n"
    "  gc      removes litter (temporary files whose writer is no longer running, empty fan-out\n"
    "          directories), then entries not used for AGE (--max-age 30d; s, m, h, d, w), then the\n"
    "          least recently used until the cache holds at most SIZE (--max-size 10G; K, M, G, T)\n"
    "          (a hit marks an entry used). --dry-run says what it would remove\n";

static const char *examples =
    "Examples:\n"
    "  entk-cache ls | sort -t$'\\t' -k2 -h | tail          # the largest entries\n"
    "  entk-cache ls | cut -f5 | sort | uniq -c            # entries per producer\n"
    "  entk-cache fsck || entk-cache fsck --repair\n"
    "  entk-cache gc --max-age 30d --max-size 10G\n"
    "  entk-cache --cache-dir /tmp/c gc --dry-run\n";

static void ls(const char *dir, int verify) {
    long n;
    cachefs_entry *e = cachefs_list(dir, verify, &n);
    uint64_t total = 0;
    int64_t now = (int64_t)time(NULL);
    for (long i = 0; i < n; i++) {
        char size[16], used[16], made[16];
        cachefs_human_size(e[i].size, size, sizeof size);
        cachefs_human_age(now - e[i].used, used, sizeof used);
        cachefs_human_age(now - e[i].created, made, sizeof made);
        printf("%s\t%s\t%s ago\t%s ago\t%s\t%s\t%s", e[i].key, size, used, made, e[i].producer, e[i].what, e[i].from);
        if (verify) printf("\t%s", e[i].bad[0] ? e[i].bad : "ok");
        putchar('\n');
        total += e[i].size;
    }
    char t[16];
    cachefs_human_size(total, t, sizeof t);
    entk_log("%ld entries, %s in %s", n, t, dir);
    free(e);
}

static int fsck(const char *dir, int repair) {
    long n, bad = 0;
    cachefs_entry *e = cachefs_list(dir, 1, &n);
    for (long i = 0; i < n; i++) {
        if (!e[i].bad[0]) continue;
        bad++;
        int gone = repair && cachefs_remove(&e[i]) == 0;
        printf("%s %s (%s): %s\n", gone ? "removed" : "bad", e[i].key, e[i].what[0] ? e[i].what : "?", e[i].bad);
    }
    uint64_t lb = 0;
    long litter = cachefs_litter(dir, 1, &lb);
    if (litter) entk_log("%ld pieces of litter (temporary files of dead writers, empty directories): entk-cache gc removes them", litter);
    entk_log("%ld entries checked, %ld bad%s", n, bad, bad && repair ? ", removed" : "");
    free(e);
    if (bad && !repair)
        entk_die(ENTK_EXIT_INPUT, "%ld of %ld cache entries are bad (listed on stdout; entk-cache fsck --repair removes them)", bad, n);
    return 0;
}

static int gc(const char *dir, int64_t max_size, int64_t max_age, int dry) {
    uint64_t lb = 0, gone_bytes = 0, total = 0;
    long litter = cachefs_litter(dir, dry, &lb), n, gone = 0;
    cachefs_entry *e = cachefs_list(dir, 0, &n); /* least recently used first */
    int64_t now = (int64_t)time(NULL);
    for (long i = 0; i < n; i++) total += e[i].size;
    for (long i = 0; i < n; i++) {
        int old = max_age >= 0 && now - e[i].used > max_age;
        int over = max_size >= 0 && total > (uint64_t)max_size;
        if (!old && !over) continue;
        if (!dry && cachefs_remove(&e[i]) != 0) continue;
        gone++;
        gone_bytes += e[i].size;
        total -= e[i].size;
    }
    if (!dry) cachefs_litter(dir, 0, &lb); /* fan-out directories the trimming emptied */
    char a[16], b[16], c[16];
    cachefs_human_size(lb, a, sizeof a);
    cachefs_human_size(gone_bytes, b, sizeof b);
    cachefs_human_size(total, c, sizeof c);
    printf("%s %ld pieces of litter (%s) and %ld entries (%s); %ld entries (%s) remain in %s\n", dry ? "would remove" : "removed",
           litter, a, gone, b, n - gone, c, dir);
    free(e);
    return 0;
}

/* The commands, as the kinds of run their options belong to (cli_opt.only). */
enum { CMD_LS = 1, CMD_FSCK = 2, CMD_GC = 4 };

static void parse_size(const char *opt, const char *arg, void *dest) {
    if ((*(int64_t *)dest = cachefs_parse_size(arg)) < 0) entk_die(ENTK_EXIT_USAGE, "%s needs a size such as 10G, not '%s'", opt, arg);
}

static void parse_age(const char *opt, const char *arg, void *dest) {
    if ((*(int64_t *)dest = cachefs_parse_age(arg)) < 0) entk_die(ENTK_EXIT_USAGE, "%s needs an age such as 30d, not '%s'", opt, arg);
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    int verify = 0, repair = 0, dry = 0;
    int64_t max_size = -1, max_age = -1;
    /* entk-cache writes no frames: no option enters a key */
    cli_opt opts[] = {
        {"verify", 0, CLI_FLAG, &verify, NULL, CLI_NOKEY, .only = CMD_LS, .help = "ls: check each entry whole"},
        {"repair", 0, CLI_FLAG, &repair, NULL, CLI_NOKEY, .only = CMD_FSCK, .help = "fsck: remove the bad entries"},
        {"max-size", 0, CLI_CUSTOM, &max_size, "SIZE", CLI_NOKEY, .only = CMD_GC, .parse = parse_size,
         .help = "gc: trim to SIZE (K, M, G, T)"},
        {"max-age", 0, CLI_CUSTOM, &max_age, "AGE", CLI_NOKEY, .only = CMD_GC, .parse = parse_age,
         .help = "gc: remove entries not used for AGE (s, m, h, d, w)"},
        {"dry-run", 0, CLI_FLAG, &dry, NULL, CLI_NOKEY, .only = CMD_GC, .help = "gc: say what would be removed"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage, .examples = examples, .opts = opts};
    int first = cli_parse(&spec, argc, argv);
    if (spec.co.output) entk_die(ENTK_EXIT_USAGE, "-o: entk-cache writes no frames (its listing goes to stdout)");
    if (first >= argc) entk_die(ENTK_EXIT_USAGE, "a command is required: ls, fsck or gc (see --help)");
    const char *cmd = argv[first];
    if (argc - first > 1) entk_die(ENTK_EXIT_USAGE, "%s takes no arguments, got '%s'", cmd, argv[first + 1]);
    cache_init(spec.co.cache_dir);
    if (!cache_enabled()) entk_die(ENTK_EXIT_USAGE, "the cache is off (--cache-dir or ENTK_CACHE_DIR is 'off')");
    const char *dir = cache_dir();
    spec.kind = strcmp(cmd, "ls") == 0 ? CMD_LS : strcmp(cmd, "fsck") == 0 ? CMD_FSCK : strcmp(cmd, "gc") == 0 ? CMD_GC : 0;
    if (!spec.kind) entk_die(ENTK_EXIT_USAGE, "unknown command '%s': ls, fsck or gc (see --help)", cmd);
    const cli_opt *mis = cli_misplaced(&spec);
    char nm[80];
    if (mis) entk_die(ENTK_EXIT_USAGE, "%s does not belong to '%s' (see --help)", cli_opt_name(mis, nm, sizeof nm), cmd);
    if (spec.kind == CMD_LS) ls(dir, verify);
    else if (spec.kind == CMD_FSCK) fsck(dir, repair);
    else gc(dir, max_size, max_age, dry);
    return 0;
}
