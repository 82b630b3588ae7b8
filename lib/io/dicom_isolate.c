/*
 * GDCM in a child process. Debian builds GDCM with assertions on, and some malformed files
 * make it abort() (or crash) inside gdcm::Reader or gdcm::ImageReader; in the calling
 * process that would end a whole `dakd info DIR`, a batch or a training run. So the DICOM
 * readers hand their GDCM work to dk_dcm_run_isolated: one forked child works through the
 * files in order and streams each result back through a pipe; when it dies, the file it
 * was on becomes an error naming it (with GDCM's assertion text when there is one), and a
 * fresh child goes on with the next file when the caller wants to.
 *
 * Why a child and not another parser: DCMTK (Debian's libdcmtk) reports these files as
 * errors, but has no JPEG 2000 decoder, so GDCM stays for the pixels; and a child costs
 * one fork per folder (measured in lib/io/README.md).
 *
 * Record on the pipe, per item, in order: {item, status, flag, message length}, the
 * message, then (status DK_OK only) what job->send writes. The child's stderr goes to a
 * second pipe that never blocks it; the parent reads it only after the child has died.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dicom_internal.h"

typedef struct {
    int32_t item, status, flag;
    uint32_t msg_len;
} record;

dk_status dk_dcm_put(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return dk_fail(DK_ERR_IO, "DICOM reader process: cannot send its result");
        c += k, n -= (size_t)k;
    }
    return DK_OK;
}

dk_status dk_dcm_get(int fd, void *p, size_t n) {
    char *c = p;
    while (n) {
        ssize_t k = read(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return dk_fail(DK_ERR_IO, "DICOM reader process: result cut short");
        c += k, n -= (size_t)k;
    }
    return DK_OK;
}

/* The child: items from `from` on; never returns. */
static _Noreturn void child(const dk_dcm_job *j, int from, int fd, int err_fd) {
    dup2(err_fd, STDERR_FILENO); /* GDCM's assertion text, for the parent's message */
    close(err_fd);
    signal(SIGPIPE, SIG_DFL);
    /* the child dies of the signal itself: a crash handler the caller installed (a crash
     * reporter, libFuzzer's) must not run here as if the caller had crashed */
    static const int fatal[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
    for (size_t k = 0; k < sizeof fatal / sizeof fatal[0]; k++) signal(fatal[k], SIG_DFL);
    for (int i = from; i < j->n; i++) {
        dk_clear_error();
        int flag = 0;
        dk_status st = j->work(j->arg, i, &flag);
        const char *msg = st == DK_OK ? "" : dk_last_error();
        record r = {i, (int32_t)st, flag, (uint32_t)strlen(msg)};
        if (dk_dcm_put(fd, &r, sizeof r) != DK_OK || dk_dcm_put(fd, msg, r.msg_len) != DK_OK)
            _exit(1);
        if (st == DK_OK && j->send && j->send(j->arg, i, fd) != DK_OK) _exit(1);
    }
    _exit(0);
}

/* The last non-empty line the dead child wrote to stderr (GDCM's "...: Assertion `...'
 * failed."), at most `cap` bytes, or "". */
static void last_words(char *out, size_t cap, int err_fd) {
    char buf[4096];
    ssize_t n = read(err_fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    char *end = buf + strlen(buf);
    while (end > buf && (end[-1] == '\n' || end[-1] == ' ')) *--end = '\0';
    char *line = strrchr(buf, '\n');
    line = line ? line + 1 : buf;
    const char *colon = strstr(line, ": Assertion");
    snprintf(out, cap, "%s", colon ? colon + 2 : line);
}

/* The child died (or ended early) on item i: record why, naming the file. */
static dk_status died(const dk_dcm_job *j, int i, int wstatus, int err_fd) {
    char words[400];
    last_words(words, sizeof words, err_fd);
    char how[64];
    if (WIFSIGNALED(wstatus))
        snprintf(how, sizeof how, "%s", strsignal(WTERMSIG(wstatus)));
    else
        snprintf(how, sizeof how, "exit status %d", WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
    return dk_fail(DK_ERR_FORMAT, "%s: the DICOM parser (GDCM) crashed while %s (%s%s%s); the "
                   "file is malformed", j->path(j->arg, i), j->doing, how, words[0] ? ": " : "",
                   words);
}

/* Read the records of one child from item `from`; *next = the first item not done.
 * DK_OK: every item was reported; DK_ERR_FORMAT from died(): the child died on *next;
 * else the status with which a failed item or the parent itself stopped the job. */
static dk_status drain(const dk_dcm_job *j, int from, int *next, int fd, int *stop) {
    *stop = 0;
    for (int i = from; i < j->n; i++) {
        *next = i;
        record r;
        char msg[1024];
        if (dk_dcm_get(fd, &r, sizeof r) != DK_OK || r.item != i || r.msg_len >= sizeof msg ||
            dk_dcm_get(fd, msg, r.msg_len) != DK_OK)
            return DK_ERR_IO; /* the child is gone */
        msg[r.msg_len] = '\0';
        if (r.status != DK_OK) {
            dk_status st = dk_fail((dk_status)r.status, "%s", msg);
            if (!j->failed || !j->failed(j->arg, i, st, r.flag)) return *stop = 1, st;
            continue;
        }
        dk_status st = j->take ? j->take(j->arg, i, fd) : DK_OK;
        if (st == DK_ERR_IO) return DK_ERR_IO; /* cut short: the child died sending */
        if (st != DK_OK) return *stop = 1, st;
    }
    *next = j->n;
    return DK_OK;
}

/* Start a child on items from `from`; its pid, its result pipe and its stderr pipe. */
static dk_status spawn(const dk_dcm_job *j, int from, pid_t *pid, int *fd, int *err_fd) {
    int p[2], e[2];
    if (pipe(p)) return dk_fail(DK_ERR_INTERNAL, "cannot create a pipe: %s", strerror(errno));
    if (pipe(e)) {
        close(p[0]), close(p[1]);
        return dk_fail(DK_ERR_INTERNAL, "cannot create a pipe: %s", strerror(errno));
    }
    /* the child must never block on stderr: the parent reads it only after its death */
    fcntl(e[1], F_SETFL, O_NONBLOCK);
    fcntl(e[0], F_SETFL, O_NONBLOCK);
    *pid = fork();
    if (*pid == 0) {
        close(p[0]), close(e[0]);
        child(j, from, p[1], e[1]);
    }
    close(p[1]), close(e[1]);
    if (*pid < 0) {
        close(p[0]), close(e[0]);
        return dk_fail(DK_ERR_INTERNAL, "cannot start a process to read DICOM: %s",
                       strerror(errno));
    }
    *fd = p[0], *err_fd = e[0];
    return DK_OK;
}

static int in_process; /* dk_dcm_set_in_process */

void dk_dcm_set_in_process(int on) { in_process = on; }

/* The fuzzers' mode: the items worked on here; work's results are already in place. */
static dk_status run_here(const dk_dcm_job *j) {
    for (int i = 0; i < j->n; i++) {
        dk_clear_error();
        int flag = 0;
        dk_status st = j->work(j->arg, i, &flag);
        if (st != DK_OK && (!j->failed || !j->failed(j->arg, i, st, flag))) return st;
    }
    return DK_OK;
}

dk_status dk_dcm_run_isolated(const dk_dcm_job *j) {
    if (in_process) return run_here(j);
    int i = 0;
    while (i < j->n) {
        pid_t pid = -1;
        int fd = -1, err_fd = -1, stop = 0, next = i;
        dk_status st = spawn(j, i, &pid, &fd, &err_fd);
        if (st != DK_OK) return st;
        st = drain(j, i, &next, fd, &stop);
        if (stop) kill(pid, SIGKILL); /* the job ends here: so does the child */
        close(fd);
        int ws = 0;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
        if (st == DK_ERR_IO && !stop) { /* the child died on item `next` */
            st = died(j, next, ws, err_fd);
            stop = !j->failed || !j->failed(j->arg, next, st, 1);
            next++;
        }
        close(err_fd);
        if (stop) return st;
        i = next;
    }
    return DK_OK;
}

void *dk_dcm_shared_alloc(size_t bytes) {
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void dk_dcm_shared_free(void *p, size_t bytes) {
    if (p) munmap(p, bytes ? bytes : 1);
}
