/* tmpfiles: temporary files that do not outlive the process that writes them.
 *
 * Outputs (outfile.h) and cache entries (cache.h) are written under a temporary name and renamed
 * into place, so nobody sees half a file. The name is "<final>.tmp.<host>.<pid>". A registered
 * temporary is removed when the program dies through entk_die and when SIGTERM, SIGINT, SIGHUP or
 * SIGPIPE ends it (the handlers, installed once, only unlink and then re-raise the signal, so the
 * exit status still says which signal it was). kill -9 cannot be caught: tmp_sweep, run by the
 * next program that writes into the same directory, removes temporaries of this host whose
 * process is gone. The host name is part of the name because a directory may be shared between
 * machines, and a process id can only be checked on the machine that has it. */
#ifndef ENTK_TMPFILES_H
#define ENTK_TMPFILES_H

/* "<path>.tmp.<host>.<pid>", malloc'd. */
char *tmp_name(const char *path);
/* From now on tmp is removed if the program dies or is ended by one of the signals above. */
void tmp_register(const char *tmp);
/* After tmp was renamed into place (or removed): forget it. */
void tmp_release(const char *tmp);
/* The pid of the process that left temporary `name` if it is this host's and that process is gone
 * (or a zombie: it will not finish its write), else 0. */
long tmp_dead(const char *name);
/* Removes the temporaries in dir that this host's dead processes left behind; once per directory
 * per process. */
void tmp_sweep(const char *dir);
/* tmp_sweep of the directory that holds path. */
void tmp_sweep_dir_of(const char *path);
#endif
