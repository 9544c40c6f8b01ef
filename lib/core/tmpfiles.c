#include "core/tmpfiles.h"
#include "core/err.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TMP 64

/* The registered names. The signal handler reads this table, so it is changed only while the
 * handled signals are blocked. */
static char *live[MAX_TMP];
static const int handled[] = {SIGTERM, SIGINT, SIGHUP, SIGPIPE};
#define NHANDLED (int)(sizeof handled / sizeof handled[0])
static int installed;

static void on_signal(int sig) {
    int saved = errno;
    for (int i = 0; i < MAX_TMP; i++)
        if (live[i]) unlink(live[i]);
    errno = saved;
    /* the disposition is back to the default (SA_RESETHAND) and sig is blocked until the handler
     * returns, when it ends the process as it would have without us */
    raise(sig);
}

static sigset_t handled_set(void) {
    sigset_t s;
    sigemptyset(&s);
    for (int i = 0; i < NHANDLED; i++) sigaddset(&s, handled[i]);
    return s;
}

static void install(void) {
    if (installed) return;
    installed = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_mask = handled_set();
    sa.sa_flags = SA_RESETHAND;
    for (int i = 0; i < NHANDLED; i++) {
        struct sigaction old;
        /* a signal the caller ignores (nohup, SIGPIPE ignored by a shell) stays ignored */
        if (sigaction(handled[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(handled[i], &sa, NULL);
    }
}

char *tmp_name(const char *path) {
    char host[256] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0]) strcpy(host, "localhost");
    host[sizeof host - 1] = 0;
    for (char *p = host; *p; p++)
        if (*p == '/') *p = '_';
    size_t n = strlen(path) + strlen(host) + 32;
    char *t = xmalloc(n);
    snprintf(t, n, "%s.tmp.%s.%ld", path, host, (long)getpid());
    return t;
}

/* entk_die's hook for one temporary */
static void remove_on_die(void *arg) {
    unlink(arg);
    tmp_release(arg);
}

void tmp_register(const char *tmp) {
    install();
    char *copy = xstrdup(tmp);
    sigset_t s = handled_set(), old;
    sigprocmask(SIG_BLOCK, &s, &old);
    int i = 0;
    while (i < MAX_TMP && live[i]) i++;
    if (i < MAX_TMP) live[i] = copy;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (i == MAX_TMP) entk_die(ENTK_EXIT_FAIL, "internal: more than %d temporary files open", MAX_TMP);
    entk_on_die(remove_on_die, copy);
}

void tmp_release(const char *tmp) {
    sigset_t s = handled_set(), old;
    sigprocmask(SIG_BLOCK, &s, &old);
    char *p = NULL;
    for (int i = 0; i < MAX_TMP && !p; i++)
        if (live[i] && strcmp(live[i], tmp) == 0) { p = live[i]; live[i] = NULL; }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (!p) return;
    entk_off_die(remove_on_die, p);
    free(p);
}

/* The process id in name if it is a temporary of this host ("*.tmp.<host>.<pid>"), else 0. */
static long tmp_pid(const char *name, const char *pat) {
    size_t pl = strlen(pat);
    for (const char *p = strstr(name, pat); p; p = strstr(p + 1, pat)) {
        const char *d = p + pl;
        size_t k = strspn(d, "0123456789");
        if (k > 0 && k < 10 && d[k] == 0) return atol(d);
    }
    return 0;
}

/* Can process pid still finish a write? Not if it is gone, nor if it is a zombie (killed, not yet
 * reaped by its parent). */
static int pid_alive(long pid) {
    if (kill((pid_t)pid, 0) != 0) return errno == EPERM;
    char stat[64], buf[256];
    snprintf(stat, sizeof stat, "/proc/%ld/stat", pid);
    FILE *f = fopen(stat, "r");
    if (!f) return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the state follows the command name, which may hold spaces */
    return !(p && p[1] == ' ' && p[2] == 'Z');
}

/* ".tmp.<host>." of this host */
static void own_pattern(char *pat, size_t n) {
    char *self = tmp_name("");   /* ".tmp.<host>.<pid>" */
    *strrchr(self, '.') = 0;
    snprintf(pat, n, "%s.", self);
    free(self);
}

long tmp_dead(const char *name) {
    char pat[300];
    own_pattern(pat, sizeof pat);
    long pid = tmp_pid(name, pat);
    return pid > 0 && pid != (long)getpid() && !pid_alive(pid) ? pid : 0;
}

void tmp_sweep(const char *dir) {
    static char *swept[32];
    static int nswept;
    for (int i = 0; i < nswept; i++)
        if (strcmp(swept[i], dir) == 0) return;
    if (nswept < 32) swept[nswept++] = xstrdup(dir);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = tmp_dead(e->d_name);
        if (!pid) continue;
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode)) continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            entk_log("removed %s/%s, left by process %ld that is gone", dir, e->d_name, pid);
    }
    closedir(d);
}

void tmp_sweep_dir_of(const char *path) {
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (!slash) tmp_sweep(".");
    else {
        if (slash == dir) slash[1] = 0;
        else *slash = 0;
        tmp_sweep(dir);
    }
    free(dir);
}
