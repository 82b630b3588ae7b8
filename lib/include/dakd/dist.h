/*
 * dakd/dist.h — data parallelism over MPI ranks: the one place dakd calls MPI.
 *
 * Built with Open MPI (CMake option DAKD_WITH_MPI, on when find_package(MPI) finds it) these
 * functions talk to the other ranks of MPI_COMM_WORLD; built without it they are the serial
 * case (one rank, every collective a copy or nothing), so callers never test the build.
 *
 *   mpirun -np 2 dakd train CONFIG      (two processes: rank 0 and rank 1 of 2)
 *
 * MPI is initialised only in a process that a launcher started as one of several ranks
 * (its environment says so: OMPI_COMM_WORLD_SIZE, PMIX_SIZE or PMI_SIZE > 1); any other
 * process, `mpirun -np 1` included, is rank 0 of 1 and never touches MPI, so a serial run
 * is the same code and the same bits whether or not the build has MPI.
 *
 * Collectives (sum, gather, broadcast, max) must be called by every rank in the same order
 * with the same sizes; they block until every rank has arrived. Sums are in a FIXED order
 * (rank 0 + rank 1 + ... in float, on rank 0, then broadcast), never MPI_Allreduce, whose
 * order depends on the topology: the same number of ranks gives the same bits run after
 * run. A failed MPI call returns DK_ERR_IO naming it; the caller then stops every rank
 * (dk_dist_abort), since the others wait in the next collective.
 */
#ifndef DAKD_DIST_H
#define DAKD_DIST_H

#include "dakd/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when built with MPI, else 0. */
int dk_dist_built(void);
/* The rank count a launcher announced in the environment (see above), 1 without one. */
int dk_dist_launched_size(void);

/* Join the other ranks (MPI_Init) when launched as one of several; otherwise nothing.
 * DK_ERR_UNSUPPORTED "built without MPI" when launched as one of several by a build
 * without MPI (each process would otherwise run the whole job into the same folder);
 * DK_ERR_IO when MPI_Init fails. Call once, before any other dk_dist_ function. */
dk_status dk_dist_init(int *argc, char ***argv);
/* MPI_Finalize when dk_dist_init initialised MPI; otherwise nothing. */
void dk_dist_finalize(void);
int dk_dist_rank(void); /* 0 .. size-1; 0 before init */
int dk_dist_size(void); /* 1 before init and in a serial process */
/* Stop every rank with exit code `code` (MPI_Abort) when there are several; returns
 * without doing anything in a serial process. The caller prints its message first. */
void dk_dist_abort(int code);

/* buf (n) := the sum over ranks of every rank's buf, added in rank order in float on rank
 * 0 (((b0 + b1) + b2) + ...) and broadcast, so every rank holds the same bits. work (n) is
 * caller-allocated scratch (unused with one rank; may then be NULL). */
dk_status dk_dist_sum(float *buf, int64_t n, float *work);
/* The same for n doubles (a loss's per-rank parts), added in double. */
dk_status dk_dist_sum_f64(double *buf, int n);
/* out (sum of counts) := the concatenation, in rank order, of every rank's in (counts[rank]
 * floats; counts (size) is the same on every rank). One rank: a copy. */
dk_status dk_dist_gather(float *out, const float *in, const int64_t *counts);
/* buf (bytes) := rank `root`'s buf on every rank. */
dk_status dk_dist_bcast(void *buf, int64_t bytes, int root);
/* The largest of every rank's v (every rank gets it); one rank: v. */
int dk_dist_max(int v);

/* The debug option DAKD_DIST_FAIL = "R:K" (rank R, step K >= 0): DK_ERR_IO "DAKD_DIST_FAIL:
 * rank R fails at step K" when this process is rank R and step == K, else DK_OK (always
 * DK_OK without the variable). The trainer calls it before the update of the step that
 * steps.jsonl logs as "global_step": K, so tests can make one rank fail and check that every
 * rank stops with the last checkpoint intact. A malformed value is DK_ERR_ARG. */
dk_status dk_dist_fault(int64_t step);

/* ---- for the study runner (`mpirun -np N dakd run`, lib/study/study_ranks.c) ----
 * Messages between ranks of the whole job (MPI_COMM_WORLD), whatever group is current.
 * With one rank (or without MPI) there is no one to talk to: DK_ERR_UNSUPPORTED. */
int dk_dist_world_rank(void);
int dk_dist_world_size(void);
dk_status dk_dist_send(const void *buf, int64_t bytes, int dest, int tag);
/* Blocking receive of exactly `bytes` from world rank src (DK_DIST_ANY: any rank; *from,
 * when not NULL, gets the sender). A message of another size is DK_ERR_IO. */
enum { DK_DIST_ANY = -1 };
dk_status dk_dist_recv(void *buf, int64_t bytes, int src, int tag, int *from);
/* 1 when a message with `tag` waits to be received (from any rank), else 0. Never blocks. */
int dk_dist_waiting(int tag);
/* Make the collectives and dk_dist_rank/size run over the world ranks `ranks` (n, in that
 * order; this rank among them) until dk_dist_group_end: a data-parallel stage of a study on
 * some of the job's ranks. Only the listed ranks call it, with the same list and tag (tags
 * tell concurrent groups apart). n = 1 (this rank alone) makes it rank 0 of 1, serial. */
dk_status dk_dist_group_begin(const int *ranks, int n, int tag);
void dk_dist_group_end(void);
/* In a process forked from a rank: forget MPI (rank 0 of 1, nothing to finalize), so the
 * child runs serially and leaves the parent's MPI state alone. */
void dk_dist_detach(void);

#ifdef __cplusplus
}
#endif
#endif
