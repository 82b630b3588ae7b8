/*
 * `mpirun -np N dakd run STUDY.ini` (dakd/study.h): the stages of a study on the job's ranks.
 *
 * Every rank loads the same study file. Rank 0 schedules as [study] jobs does (study_jobs.c):
 * it computes every key, prepares each stage's folder, writes manifest.json and runs the
 * report; a stage whose turn has come goes to a free rank. Rank 0's own share runs in a
 * forked child as with jobs (so rank 0 itself never runs OpenMP and may fork again); the
 * other ranks ("workers") wait here for a stage, run it in their own process with its output
 * in <stage>/run.log, and answer with its status. Stage folders live on a file system every
 * rank sees (a cluster's shared home or scratch); nothing else is sent around: the worker
 * reads its dependencies' stage.json from there.
 *
 * A train stage with `ranks = K` (K > 1) is one data-parallel training (dakd/dist.h) over K
 * worker ranks (never rank 0, which keeps scheduling), with its collectives in a group of
 * those ranks; the group's first rank writes the stage's files and stage.json, the others
 * log to run.rank<k>.log. Its results are those of `mpirun -np K dakd distill`: equal to a
 * one-rank run within float summation, so the key holds `ranks=K` (a serial run, or ranks =
 * 1, is another key). A failure inside such a group stops the whole job (MPI_Abort), since
 * the group's other ranks wait in a collective (dk__study_serve returns it, and the command
 * aborts the job); any other stage's failure is reported by rank 0 as with jobs.
 *
 * Messages (tags below), world ranks: rank 0 -> worker: RUN {cmd, stage, resume, nranks},
 * then every stage's key (nstages x 65 bytes; a worker has parsed the same stages but
 * computed no key), then the group's ranks when nranks > 1; cmd STOP ends the worker.
 * Worker -> rank 0: DONE {stage, status, stopped}.
 */
#include "study_internal.h"

#include "dakd/dist.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { TAG_RUN = 7100, TAG_KEYS = 7101, TAG_RANKS = 7102, TAG_DONE = 7103, TAG_GROUP = 7200 };
enum { CMD_STOP = 0, CMD_RUN = 1 };

typedef struct {
    int32_t cmd, stage, resume, nranks;
} run_msg;

int dk__study_ranks_of(const study_stage *st) {
    return st->f.kind == STAGE_TRAIN && dk_dist_world_size() > 1 && st->f.ranks > 1
               ? st->f.ranks
               : 1;
}

dk_status dk__study_ranks_check(const dk_study *s) {
    int workers = dk_dist_world_size() - 1;
    for (int i = 0; i < s->nstages; i++) {
        const study_stage *st = &s->stages[i];
        if (dk__study_ranks_of(st) > workers)
            return dk_fail(DK_ERR_ARG, "%s:%d: [stage.%s] ranks = %d needs %d ranks besides "
                           "rank 0, which schedules: run under mpirun -np %d or more",
                           s->path, st->line, st->name, st->f.ranks, st->f.ranks,
                           st->f.ranks + 1);
    }
    return DK_OK;
}

dk_status dk__study_ranks_send(const dk_study *s, int dest, int stage, int resume,
                               const int *ranks, int n) {
    run_msg m = {CMD_RUN, stage, resume, n};
    size_t nk = (size_t)s->nstages * 65;
    char *keys = malloc(nk);
    if (!keys) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", s->path);
    for (int i = 0; i < s->nstages; i++) memcpy(keys + (size_t)i * 65, s->stages[i].key, 65);
    dk_status rc = dk_dist_send(&m, sizeof m, dest, TAG_RUN);
    if (rc == DK_OK) rc = dk_dist_send(keys, (int64_t)nk, dest, TAG_KEYS);
    if (rc == DK_OK && n > 1) rc = dk_dist_send(ranks, (int64_t)n * sizeof *ranks, dest, TAG_RANKS);
    free(keys);
    return rc;
}

void dk__study_ranks_stop(void) {
    run_msg m = {CMD_STOP, 0, 0, 0};
    for (int r = 1; r < dk_dist_world_size(); r++) dk_dist_send(&m, sizeof m, r, TAG_RUN);
}

int dk__study_ranks_done(int *rank, int *stage, int *code, int *stopped) {
    if (!dk_dist_waiting(TAG_DONE)) return 0;
    int32_t d[3];
    if (dk_dist_recv(d, sizeof d, DK_DIST_ANY, TAG_DONE, rank) != DK_OK) return 0;
    *stage = d[0], *code = d[1], *stopped = d[2];
    return 1;
}

/* stdout and stderr to `log` (appended: a resume continues it) until restore(). */
static int redirect(int saved[2], const char *log) {
    fflush(stdout);
    fflush(stderr);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    saved[0] = dup(STDOUT_FILENO), saved[1] = dup(STDERR_FILENO);
    if (fd < 0 || saved[0] < 0 || saved[1] < 0 || dup2(fd, STDOUT_FILENO) < 0 ||
        dup2(fd, STDERR_FILENO) < 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static void restore(const int saved[2]) {
    fflush(stdout);
    fflush(stderr);
    if (saved[0] >= 0) dup2(saved[0], STDOUT_FILENO), close(saved[0]);
    if (saved[1] >= 0) dup2(saved[1], STDERR_FILENO), close(saved[1]);
}

/* Run one stage here, as rank 0's child would; the group's ranks when nranks > 1. */
static dk_status serve_one(dk_study *s, const run_msg *m, const int *ranks, int *stopped) {
    study_stage *st = &s->stages[m->stage];
    for (int j = 0; j < st->ndeps; j++) { /* what a body reads of its dependencies */
        study_stage *d = &s->stages[st->deps[j]];
        cJSON *rec = dk__study_recorded(s, d);
        if (rec) dk__study_adopt(d, rec);
    }
    int self = dk_dist_world_rank(), lead = m->nranks <= 1 || ranks[0] == self;
    char log[STUDY_PATH_MAX], name[32];
    snprintf(name, sizeof name, "run.rank%d.log", self);
    dk__study_path(log, sizeof log, s, st->dir, lead ? "run.log" : name);
    int saved[2] = {-1, -1};
    if (redirect(saved, log) != 0) {
        restore(saved);
        return dk_fail(DK_ERR_IO, "%s: rank %d cannot write %s", s->path, self, log);
    }
    dk_status rc = dk_dist_group_begin(m->nranks > 1 ? ranks : &self, m->nranks,
                                       TAG_GROUP + m->stage); /* 1: rank 0 of 1 */
    rc = dk__study_execute_logged(s, st, m->resume, rc, stopped);
    dk_dist_group_end();
    restore(saved);
    return rc;
}

dk_status dk__study_serve(dk_study *s) {
    size_t nk = (size_t)s->nstages * 65;
    char *keys = malloc(nk);
    int *ranks = malloc((size_t)dk_dist_world_size() * sizeof *ranks);
    dk_status rc = keys && ranks ? DK_OK : dk_fail(DK_ERR_NOMEM, "%s: out of memory", s->path);
    for (;;) {
        run_msg m;
        if (rc == DK_OK) rc = dk_dist_recv(&m, sizeof m, 0, TAG_RUN, NULL);
        if (rc != DK_OK || m.cmd == CMD_STOP) break;
        rc = dk_dist_recv(keys, (int64_t)nk, 0, TAG_KEYS, NULL);
        if (rc == DK_OK && (m.stage < 0 || m.stage >= s->nstages || m.nranks < 1 ||
                            m.nranks > dk_dist_world_size()))
            rc = dk_fail(DK_ERR_INTERNAL, "rank %d: a stage message out of range",
                         dk_dist_world_rank());
        if (rc == DK_OK && m.nranks > 1)
            rc = dk_dist_recv(ranks, (int64_t)m.nranks * sizeof *ranks, 0, TAG_RANKS, NULL);
        if (rc != DK_OK) break;
        for (int i = 0; i < s->nstages; i++) {
            memcpy(s->stages[i].key, keys + (size_t)i * 65, 64);
            s->stages[i].key[64] = '\0';
        }
        int stopped = 0;
        dk_status st = serve_one(s, &m, ranks, &stopped);
        if (st != DK_OK && m.nranks > 1) { /* the group's other ranks wait in a collective */
            rc = dk_error_context(st, "stage %s", s->stages[m.stage].dir);
            break;
        }
        int32_t d[3] = {m.stage, (int32_t)st, stopped};
        rc = dk_dist_send(d, sizeof d, 0, TAG_DONE);
    }
    free(keys);
    free(ranks);
    return rc;
}
