/*
 * [study] jobs = N (dakd/study.h): the stages of a study in up to N child processes at once.
 * The parent looks at a stage once its dependencies have finished (its key needs theirs and
 * the files they wrote): up to date, it is done at once; else it waits for a free slot and
 * runs in a forked child whose stdout and stderr go to <stage>/run.log, so the lines of two
 * trainings never mix. Stages waiting for a slot start in [study] stages order. The parent
 * keeps the books as the one-at-a-time loop does (study_run.c): it reads a finished child's
 * stage.json into st->record, prints the stage's lines and rewrites manifest.json.
 *
 * Nothing a stage computes depends on N: no key holds it, each child sets the study's thread
 * count, and a report stage (which reads every stage's record and wall time, not only its
 * dependencies') starts once every stage before it has finished, and no stage after it
 * starts before it has: it sees what it sees one stage at a time.
 *
 * Every stage that runs does so in a child, phantoms and report too: the parent itself runs
 * no OpenMP region, because GNU libgomp is not fork-safe (the child of a process that has
 * run a parallel region with more than one thread hangs in its own first one).
 *
 * A failure (a child's non-zero exit, or a key or folder the parent cannot make) stops new
 * starts; the running children finish and are taken in, then the first failure is returned,
 * naming the stage, its log and the log's last line (the child writes its error there
 * last). SIGINT, SIGTERM and SIGUSR1 (unless ignored) are caught for the run: the parent
 * passes them on to the running children (each in a process group of its own, so Ctrl-C
 * on a terminal reaches them once, through the parent), which end as they would alone, a
 * training with its checkpoint; it waits for them and returns DK_OK with
 * dk_interrupt_pending() set, as a run one stage at a time does (the caller says how to go
 * on). The handler's pid table is static: one such run per process.
 *
 * Under mpirun (study_ranks.c) the slots are the job's ranks, one stage each: rank 0's slot
 * is a child as above, another rank's gets the stage as a message and answers with its exit
 * status (the parent polls for answers every 20 ms while a rank works), and a `ranks = K`
 * stage takes K free ranks other than 0. A report takes rank 0's slot (its child holds every
 * record). Signals reach every rank from mpirun; a rank that answers "stopped" stops the
 * run here too.
 */
#define _GNU_SOURCE /* pipe2, strsignal */
#include "study_internal.h"

#include "dakd/dist.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

enum { MAX_JOBS = 64 }; /* [study] jobs' upper bound (study_parse.c) */

/* Read by the signal handler: the running children (0 = a free slot). */
static volatile sig_atomic_t got_signal;
static volatile pid_t child_pid[MAX_JOBS];

static void on_signal(int sig) {
    got_signal = sig;
    dk_interrupt_request(sig); /* the caller reports it as after one stage at a time */
    for (int k = 0; k < MAX_JOBS; k++)
        if (child_pid[k] > 0) kill(child_pid[k], sig);
}

enum { PENDING, TO_RUN, RUNNING, DONE }; /* a stage's state */

/* Passed on to the children: the interrupts, and SIGUSR1, which mpirun passes on to the ranks
 * at once (it delays SIGTERM and follows it with SIGKILL: docs/scaling.md). */
static const int caught[3] = {SIGINT, SIGTERM, SIGUSR1};

typedef struct {
    dk_study *s;
    const dk_study_opts *o;
    int from;                      /* --from's stage, or -1 */
    unsigned char state[STUDY_MAX_RUNS];
    int stage[MAX_JOBS];           /* the stage each slot runs */
    int fd[MAX_JOBS];              /* read end of its child's pipe: hang-up when it is gone */
    int nrun;                      /* stages running */
    /* under mpirun (study_ranks.c): one stage at a time per rank; rank 0's in a child */
    int nranks;                    /* the job's ranks; 0: [study] jobs children */
    int *rank_stage;               /* (nranks) the stage each rank runs, -1: free */
    int waiting[STUDY_MAX_RUNS];   /* a running stage's ranks that have not answered yet */
    int answer[STUDY_MAX_RUNS][2]; /* their first failure's status, and whether one stopped */
    dk_status err;                 /* the first failure and its message */
    char msg[4096];
    struct sigaction old[3];       /* the caller's handling of the `caught` signals */
} sched;

static void failed(sched *q, dk_status st) {
    if (q->err != DK_OK) return;
    q->err = st;
    snprintf(q->msg, sizeof q->msg, "%s", dk_last_error());
}

/* Its dependencies have finished, and so has every stage before it when it or one of them
 * is a report stage. */
static int may_start(const sched *q, int i) {
    const study_stage *st = &q->s->stages[i];
    for (int j = 0; j < st->ndeps; j++)
        if (q->state[st->deps[j]] != DONE) return 0;
    for (int k = 0; k < i; k++)
        if ((st->f.kind == STAGE_REPORT || q->s->stages[k].f.kind == STAGE_REPORT) &&
            q->state[k] != DONE)
            return 0;
    return 1;
}

/* The last non-empty line of a log (without the child's "error: "), at most n bytes. */
static void last_line(char *out, size_t n, const char *path) {
    char buf[4096];
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    if (f && fseek(f, -(long)(sizeof buf - 1), SEEK_END) != 0) rewind(f);
    if (f) len = fread(buf, 1, sizeof buf - 1, f), fclose(f);
    buf[len] = '\0';
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = '\0';
    char *line = strrchr(buf, '\n');
    line = line ? line + 1 : buf;
    if (strncmp(line, "error: ", 7) == 0) line += 7;
    snprintf(out, n, "%s", line);
}

/* What a child (or a rank) left, its exit status `code` or the signal `sig` that killed
 * it: DK_OK with its stage.json adopted, or the failure naming it. */
static dk_status ended(const sched *q, study_stage *st, int code, int sig) {
    char log[STUDY_PATH_MAX], last[1024], how[80];
    dk__study_path(log, sizeof log, q->s, st->dir, "run.log");
    if (!sig && code == 0) {
        cJSON *rec = dk__study_recorded(q->s, st);
        if (!rec && got_signal) return DK_OK; /* interrupted: its checkpoint remains */
        if (!rec)
            return dk_fail(DK_ERR_INTERNAL, "%s: stage %s ended without its stage.json (log: "
                           "%s)", q->s->path, st->dir, log);
        dk__study_adopt(st, rec);
        st->ran = 1;
        return DK_OK;
    }
    if (sig) snprintf(how, sizeof how, "killed: %s", strsignal(sig));
    else snprintf(how, sizeof how, "exit status %d", code);
    last_line(last, sizeof last, log);
    return dk_fail(code >= DK_ERR_ARG && code <= DK_ERR_INTERNAL ? (dk_status)code
                                                                 : DK_ERR_INTERNAL,
                   "%s: stage %s failed (%s): %s (log: %s)", q->s->path, st->dir, how,
                   last[0] ? last : "its log is empty", log);
}

/* The child: the caller's signal handling back, output to the log, the stage; never
 * returns. The parent prints the stage's lines; progress reaches the log as plain lines. */
static _Noreturn void child(const sched *q, study_stage *st, int resume, const char *log,
                            const sigset_t *mask, pid_t parent) {
    /* a process group of its own: a terminal's Ctrl-C reaches the parent alone, which passes
     * it on once (two would be the "second Ctrl-C" that stops a training without its
     * checkpoint) */
    setpgid(0, 0);
    /* a parent killed outright (SIGKILL; under mpirun, a rank that did not end within Open
     * MPI's odls_base_sigkill_timeout) takes its children along, as an interrupt: a
     * training writes its checkpoint, and nothing keeps writing into the run folder */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(128 + SIGTERM);
    dk_dist_detach(); /* rank 0's child runs alone: the ranks' MPI stays the parent's */
    for (int k = 0; k < 3; k++) sigaction(caught[k], &q->old[k], NULL);
    sigprocmask(SIG_SETMASK, mask, NULL);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644); /* a resume appends */
    if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) _exit(DK_ERR_IO);
    close(fd);
    /* the run's reporter, inherited: named after this child's stage for its own log */
    if (q->s->progress)
        dk_progress_item(q->s->progress, "stage %d/%d %s", (int)(st - q->s->stages) + 1,
                         q->s->nstages, st->dir);
    int stopped = 0;
    _exit((int)dk__study_execute_logged(q->s, st, resume, DK_OK, &stopped));
}

dk_status dk__study_execute_logged(dk_study *s, study_stage *st, int resume, dk_status rc,
                                   int *stopped) {
    *stopped = 0;
    dk_set_threads(s->set.threads);
    dk_study_opts o = {NULL, NULL, 0};
    if (rc == DK_OK) rc = dk__study_execute(s, st, resume, &o, stopped);
    if (rc != DK_OK) fprintf(stderr, "error: %s\n", dk_last_error()); /* ended() reads it */
    fflush(stdout);
    fflush(stderr);
    return rc;
}

/* Under mpirun: the free ranks stage i would take (into r), 1 when there are enough. A
 * report runs on rank 0 (its child has every stage's record); a data-parallel stage on
 * ranks other than 0 (rank 0 keeps scheduling); any other stage on the first free rank. */
static int pick_ranks(const sched *q, int i, int *r) {
    const study_stage *st = &q->s->stages[i];
    int need = dk__study_ranks_of(st), k = 0;
    int last = st->f.kind == STAGE_REPORT ? 1 : q->nranks;
    for (int x = need > 1 ? 1 : 0; x < last && k < need; x++)
        if (q->rank_stage[x] < 0) {
            if (r) r[k] = x;
            k++;
        }
    return k == need;
}

static int has_room(const sched *q, int i) {
    return q->nranks ? pick_ranks(q, i, NULL) : q->nrun < q->s->set.jobs;
}

/* Give stage i to the worker ranks r (n of them; rank 0 is not among them). */
static dk_status start_remote(sched *q, int i, int resume, const int *r, int n) {
    dk_status rc = DK_OK;
    for (int k = 0; k < n && rc == DK_OK; k++)
        rc = dk__study_ranks_send(q->s, r[k], i, resume, r, n);
    if (rc != DK_OK) return rc;
    for (int k = 0; k < n; k++) q->rank_stage[r[k]] = i;
    q->waiting[i] = n, q->answer[i][0] = q->answer[i][1] = 0;
    q->nrun++;
    q->state[i] = RUNNING;
    return DK_OK;
}

static void start_local(sched *q, int i, int resume, const char *log);

/* Prepare stage i (in the parent, so its folder is cleared before the log is made) and
 * start it: a child in a free slot, or (under mpirun) the free ranks it takes. */
static void start(sched *q, int i) {
    study_stage *st = &q->s->stages[i];
    int resume = 0, *r = q->nranks ? malloc((size_t)q->nranks * sizeof *r) : NULL;
    char log[STUDY_PATH_MAX];
    dk__study_path(log, sizeof log, q->s, st->dir, "run.log");
    dk_status rc = dk__study_prepare(q->s, st, q->from >= 0 && i >= q->from, &resume);
    if (rc == DK_OK && q->nranks && !r) rc = dk_fail(DK_ERR_NOMEM, "study: out of memory");
    if (rc == DK_OK && q->nranks) DK_ASSERT(pick_ranks(q, i, r));
    if (rc == DK_OK) {
        cJSON_Delete(st->record); /* pending (manifest.json) until its stage.json */
        st->record = NULL;
        dk__study_print_running(q->o->out, q->s, st, resume, log);
    }
    if (rc == DK_OK && q->nranks && r[0] != 0)
        rc = start_remote(q, i, resume, r, dk__study_ranks_of(st));
    else if (rc == DK_OK)
        start_local(q, i, resume, log);
    free(r);
    if (rc != DK_OK) failed(q, rc);
}

/* Fork stage i's child into a free slot (rank 0's under mpirun). */
static void start_local(sched *q, int i, int resume, const char *log) {
    study_stage *st = &q->s->stages[i];
    int fd[2], slot = 0;
    while (child_pid[slot] != 0) slot++; /* q->nrun < jobs <= MAX_JOBS */
    dk_status rc = DK_OK;
    if (pipe2(fd, O_CLOEXEC) != 0)
        rc = dk_fail(DK_ERR_IO, "%s: stage %s: cannot make a pipe: %s", q->s->path, st->dir,
                     strerror(errno));
    if (rc != DK_OK) {
        failed(q, rc);
        return;
    }
    fflush(NULL); /* nothing buffered here is written again by the child */
    sigset_t block, prev;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &prev); /* until the pid is in the handler's table */
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        close(fd[0]);
        child(q, st, resume, log, &prev, parent);
    }
    close(fd[1]);
    if (pid < 0) {
        close(fd[0]);
        rc = dk_fail(DK_ERR_IO, "%s: stage %s: cannot start a process: %s", q->s->path,
                     st->dir, strerror(errno));
    } else {
        child_pid[slot] = pid, q->stage[slot] = i, q->fd[slot] = fd[0];
        q->nrun++;
        q->state[i] = RUNNING;
        if (q->nranks) q->rank_stage[0] = i;
    }
    sigprocmask(SIG_SETMASK, &prev, NULL);
    if (rc != DK_OK) failed(q, rc);
}

/* Stage i's child or ranks ended with exit status `code` or signal `sig`. */
static void finished(sched *q, int i, int code, int sig) {
    q->nrun--;
    study_stage *st = &q->s->stages[i];
    dk_status rc = ended(q, st, code, sig);
    if (rc == DK_OK) q->state[i] = DONE, dk__study_print_done(q->o->out, q->s, st);
    rc = dk__study_finish(q->s, st, rc);
    if (rc != DK_OK) failed(q, rc);
}

/* Take in the child of slot k, whose pipe hung up. */
static void reap(sched *q, int k) {
    pid_t pid = child_pid[k];
    child_pid[k] = 0; /* ours until waitpid, so the handler's kill never reaches another */
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) continue;
    close(q->fd[k]);
    if (q->nranks) q->rank_stage[0] = -1;
    int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 0, sig = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
    finished(q, q->stage[k], code, sig);
}

/* A worker rank's answer for stage i; the stage has finished when all its ranks answered. */
static void answered(sched *q, int rank, int i, int code, int stopped) {
    if (i < 0 || i >= q->s->nstages || rank <= 0 || rank >= q->nranks ||
        q->rank_stage[rank] != i) {
        failed(q, dk_fail(DK_ERR_INTERNAL, "study: rank %d answered for stage %d, which it "
                          "does not run", rank, i));
        return;
    }
    q->rank_stage[rank] = -1;
    /* a group's ranks end alike (a failure inside one aborts the job), save for timing */
    if (!q->answer[i][0]) q->answer[i][0] = code;
    q->answer[i][1] |= stopped;
    if (--q->waiting[i] > 0) return;
    if (q->answer[i][1] && !got_signal) { /* interrupted there: stop here too */
        got_signal = SIGTERM;
        dk_interrupt_request(SIGTERM);
        for (int k = 0; k < MAX_JOBS; k++)
            if (child_pid[k] > 0) kill(child_pid[k], SIGTERM);
    }
    finished(q, i, q->answer[i][0], 0);
}

/* Wait for a child to end (or a signal, or a second), then take in those that ended. A
 * signal that reached another thread of this process still reaches the children here. */
static void wait_children(sched *q) {
    struct pollfd p[MAX_JOBS];
    int slot[MAX_JOBS], n = 0;
    for (int k = 0; k < MAX_JOBS; k++)
        if (child_pid[k] > 0) p[n] = (struct pollfd){q->fd[k], POLLIN, 0}, slot[n++] = k;
    int remote = q->nranks && q->nrun > n; /* ranks' answers come as MPI messages */
    int r = poll(p, (nfds_t)n, remote ? 20 : 1000);
    for (int k = 0; got_signal && k < MAX_JOBS; k++)
        if (child_pid[k] > 0) kill(child_pid[k], got_signal);
    for (int j = 0; j < n && r > 0; j++)
        if (p[j].revents) reap(q, slot[j]);
    int rank, i, code, stopped;
    while (remote && dk__study_ranks_done(&rank, &i, &code, &stopped))
        answered(q, rank, i, code, stopped);
}

/* One thing to do: look at the first stage whose turn has come, or start the first one
 * waiting for a slot. 0 when nothing can be done until a child ends. */
static int step(sched *q) {
    dk_study *s = q->s;
    for (int i = 0; i < s->nstages; i++) {
        if (q->state[i] != PENDING || !may_start(q, i)) continue;
        int run = 0;
        dk_status rc = dk__study_check(s, &s->stages[i], q->from >= 0 && i >= q->from, q->o,
                                       &run);
        if (rc == DK_OK && !run) rc = dk__study_finish(s, &s->stages[i], DK_OK);
        if (rc != DK_OK) failed(q, rc);
        q->state[i] = run ? TO_RUN : DONE;
        return 1;
    }
    for (int i = 0; i < s->nstages; i++)
        if (q->state[i] == TO_RUN && has_room(q, i)) {
            start(q, i);
            return 1;
        }
    return 0;
}

static void catch_signals(sched *q) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    got_signal = 0;
    for (int k = 0; k < 3; k++) {
        sigaction(caught[k], NULL, &q->old[k]);
        if (q->old[k].sa_handler != SIG_IGN) sigaction(caught[k], &sa, NULL);
    }
}

dk_status dk__study_run_jobs(dk_study *s, const dk_study_opts *o, int from) {
    sched *q = calloc(1, sizeof *q);
    if (!q) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", s->path);
    q->s = s, q->o = o, q->from = from;
    if (dk_dist_world_size() > 1) {
        q->nranks = dk_dist_world_size();
        q->rank_stage = malloc((size_t)q->nranks * sizeof *q->rank_stage);
        if (!q->rank_stage) return free(q), dk_fail(DK_ERR_NOMEM, "%s: out of memory", s->path);
        for (int r = 0; r < q->nranks; r++) q->rank_stage[r] = -1;
    }
    catch_signals(q);
    for (;;) {
        if (q->err == DK_OK && !got_signal && step(q)) continue;
        if (q->nrun == 0) break;
        wait_children(q);
    }
    for (int k = 0; k < 3; k++) sigaction(caught[k], &q->old[k], NULL);
    /* interrupted: DK_OK with dk_interrupt_pending() set, as one stage at a time returns */
    dk_status rc = got_signal ? DK_OK : q->err;
    if (rc != DK_OK) rc = dk_fail(rc, "%s", q->msg);
    for (int i = 0; rc == DK_OK && !got_signal && i < s->nstages; i++)
        DK_ASSERT(q->state[i] == DONE);
    free(q->rank_stage);
    free(q);
    return rc;
}
