/* What a long run shares with the processes around it: the lock on its output folder
 * (flock on <dir>/.dakd.lock, the holder's pid inside for messages) and the request to
 * stop at the next safe point that a signal handler makes (see dakd/core.h). */
/* flock() is a BSD function */
#define _DEFAULT_SOURCE

#include "dakd/core.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define LOCK_NAME ".dakd.lock"

/* The pid written in the lock file, 0 when none. */
static long read_pid(int fd) {
    char buf[32] = "";
    ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
    if (k <= 0) return 0;
    buf[k] = '\0';
    long pid = strtol(buf, NULL, 10);
    return pid > 0 ? pid : 0;
}

static void write_pid(int fd) {
    char buf[32];
    int k = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    /* only a message depends on it: a failure here leaves the lock itself held */
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)k, 0) != k)
        dk_log(DK_LOG_WARN, "cannot write the pid into the lock file: %s", strerror(errno));
}

dk_status dk_dir_lock_take(dk_dir_lock *l, const char *dir) {
    l->fd = -1;
    l->pid = 0;
    char p[4096];
    if (snprintf(p, sizeof p, "%s/" LOCK_NAME, dir) >= (int)sizeof p)
        return dk_fail(DK_ERR_ARG, "%.64s...: path too long", dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return dk_fail(DK_ERR_IO, "%s: cannot open the folder's lock file: %s", p,
                       strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        long holder = read_pid(fd);
        close(fd);
        if (e == EWOULDBLOCK)
            return dk_fail(DK_ERR_IO, "%s: in use by another dakd process (pid %ld, lock %s): "
                           "wait for it to end or stop it, or use another folder", dir, holder,
                           p);
        if (e != ENOLCK && e != EOPNOTSUPP && e != EINVAL)
            return dk_fail(DK_ERR_IO, "%s: cannot lock: %s", p, strerror(e));
        /* a file system without flock (some network mounts): run unguarded, and say so */
        dk_log(DK_LOG_WARN, "%s: this file system cannot lock (%s); nothing stops a second "
               "run from writing into %s at the same time", p, strerror(e), dir);
        return DK_OK;
    }
    long prev = read_pid(fd); /* a clean release empties the file: a pid is a holder killed */
    if (prev > 0 && prev != (long)getpid())
        dk_log(DK_LOG_INFO, "%s: taking over the lock of pid %ld, which ended without "
               "releasing it%s", p, prev,
               kill((pid_t)prev, 0) != 0 && errno == ESRCH ? " (no longer running)" : "");
    write_pid(fd);
    l->fd = fd;
    l->pid = (long)getpid();
    return DK_OK;
}

void dk_dir_lock_release(dk_dir_lock *l) {
    if (!l || l->fd < 0) return;
    /* a forked child closes its inherited copy only: the lock stays its parent's */
    if (l->pid == (long)getpid() && ftruncate(l->fd, 0) != 0)
        dk_log(DK_LOG_WARN, "cannot empty the lock file: %s", strerror(errno));
    close(l->fd);
    l->fd = -1;
    l->pid = 0;
}

/* ---------------------------------------------------------------- interrupt request */

static volatile sig_atomic_t interrupt_signal;

void dk_interrupt_request(int signo) { interrupt_signal = signo; }
int dk_interrupt_pending(void) { return interrupt_signal; }
void dk_interrupt_clear(void) { interrupt_signal = 0; }
