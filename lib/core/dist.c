/*
 * Ranks and collectives (dakd/dist.h): Open MPI when built with DAKD_WITH_MPI, otherwise the
 * serial case. The MPI section is the only code in dakd that calls MPI.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dakd/dist.h"

#ifndef DAKD_WITH_MPI
#define DAKD_WITH_MPI 0
#endif
#if DAKD_WITH_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1;             /* in the current group */
static int g_world_rank = 0, g_world_size = 1; /* in the whole job */
#if DAKD_WITH_MPI
static int g_mpi = 0; /* MPI_Init was called */
static MPI_Comm g_comm = MPI_COMM_NULL; /* the collectives' group: the world or a stage's */
#endif

int dk_dist_built(void) { return DAKD_WITH_MPI ? 1 : 0; }

int dk_dist_launched_size(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) {
            long n = strtol(v, NULL, 10);
            if (n > 1 && n < INT_MAX) return (int)n;
        }
    }
    return 1;
}

int dk_dist_rank(void) { return g_rank; }
int dk_dist_size(void) { return g_size; }
int dk_dist_world_rank(void) { return g_world_rank; }
int dk_dist_world_size(void) { return g_world_size; }

dk_status dk_dist_fault(int64_t step) {
    const char *v = getenv("DAKD_DIST_FAIL");
    if (!v || !*v) return DK_OK;
    char *end, *colon;
    long r = strtol(v, &colon, 10);
    long long k = -1;
    if (colon != v && *colon == ':') k = strtoll(colon + 1, &end, 10);
    if (k < 0 || end == colon + 1 || *end || r < 0)
        return dk_fail(DK_ERR_ARG, "DAKD_DIST_FAIL = '%s': expected RANK:STEP (e.g. 1:5)", v);
    if (r != g_rank || k != step) return DK_OK;
    return dk_fail(DK_ERR_IO, "DAKD_DIST_FAIL: rank %ld fails at step %lld (a requested "
                   "failure)", r, k);
}

#if DAKD_WITH_MPI

static dk_status mpi_check(int rc, const char *call) {
    if (rc == MPI_SUCCESS) return DK_OK;
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return dk_fail(DK_ERR_IO, "%s failed on rank %d of %d: %s", call, g_rank, g_size, msg);
}

/* MPI counts are int: a buffer over INT_MAX elements is refused (none is near it). */
static dk_status fits_int(int64_t n, const char *call) {
    if (n >= 0 && n <= INT_MAX) return DK_OK;
    return dk_fail(DK_ERR_ARG, "%s: %lld elements exceed MPI's int count", call, (long long)n);
}

dk_status dk_dist_init(int *argc, char ***argv) {
    if (dk_dist_launched_size() <= 1) return DK_OK;
    int rc = MPI_Init(argc, argv);
    if (rc != MPI_SUCCESS) return dk_fail(DK_ERR_IO, "MPI_Init failed (error %d)", rc);
    g_mpi = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_world_size);
    g_comm = MPI_COMM_WORLD, g_rank = g_world_rank, g_size = g_world_size;
    return DK_OK;
}

void dk_dist_finalize(void) {
    dk_dist_group_end();
    if (g_mpi) MPI_Finalize();
    g_mpi = 0;
}

void dk_dist_detach(void) {
    g_mpi = 0, g_comm = MPI_COMM_NULL;
    g_rank = g_world_rank = 0, g_size = g_world_size = 1;
}

void dk_dist_abort(int code) {
    if (g_mpi && g_world_size > 1) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

static dk_status no_peer(const char *call) {
    return dk_fail(DK_ERR_UNSUPPORTED, "%s: this process is the only rank", call);
}

dk_status dk_dist_send(const void *buf, int64_t bytes, int dest, int tag) {
    if (!g_mpi) return no_peer("dk_dist_send");
    dk_status st = fits_int(bytes, "dk_dist_send");
    if (st != DK_OK) return st;
    return mpi_check(MPI_Send(buf, (int)bytes, MPI_BYTE, dest, tag, MPI_COMM_WORLD), "MPI_Send");
}

dk_status dk_dist_recv(void *buf, int64_t bytes, int src, int tag, int *from) {
    if (!g_mpi) return no_peer("dk_dist_recv");
    dk_status st = fits_int(bytes, "dk_dist_recv");
    if (st != DK_OK) return st;
    MPI_Status ms;
    st = mpi_check(MPI_Recv(buf, (int)bytes, MPI_BYTE, src == DK_DIST_ANY ? MPI_ANY_SOURCE : src,
                            tag, MPI_COMM_WORLD, &ms), "MPI_Recv");
    int got = 0;
    if (st == DK_OK) MPI_Get_count(&ms, MPI_BYTE, &got);
    if (st == DK_OK && got != (int)bytes)
        st = dk_fail(DK_ERR_IO, "MPI_Recv on rank %d: %d bytes from rank %d, expected %lld",
                     g_world_rank, got, ms.MPI_SOURCE, (long long)bytes);
    if (from) *from = ms.MPI_SOURCE;
    return st;
}

int dk_dist_waiting(int tag) {
    int flag = 0;
    if (g_mpi && MPI_Iprobe(MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE) !=
                     MPI_SUCCESS)
        flag = 0;
    return flag;
}

dk_status dk_dist_group_begin(const int *ranks, int n, int tag) {
    if (!g_mpi) return no_peer("dk_dist_group_begin");
    dk_dist_group_end();
    if (n == 1) { /* this rank alone: the serial case, no communicator needed */
        g_comm = MPI_COMM_SELF, g_rank = 0, g_size = 1;
        return DK_OK;
    }
    MPI_Group world, grp;
    MPI_Comm comm = MPI_COMM_NULL;
    MPI_Comm_group(MPI_COMM_WORLD, &world);
    int rc = MPI_Group_incl(world, n, ranks, &grp);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_create_group(MPI_COMM_WORLD, grp, tag, &comm);
    MPI_Group_free(&world);
    if (rc == MPI_SUCCESS) MPI_Group_free(&grp);
    if (rc == MPI_SUCCESS && comm == MPI_COMM_NULL) rc = MPI_ERR_GROUP; /* not a member */
    dk_status st = mpi_check(rc, "MPI_Comm_create_group");
    if (st != DK_OK) return st;
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    g_comm = comm;
    MPI_Comm_rank(comm, &g_rank);
    MPI_Comm_size(comm, &g_size);
    return DK_OK;
}

void dk_dist_group_end(void) {
    if (g_mpi && g_comm != MPI_COMM_WORLD && g_comm != MPI_COMM_SELF && g_comm != MPI_COMM_NULL)
        MPI_Comm_free(&g_comm);
    if (g_mpi) g_comm = MPI_COMM_WORLD;
    g_rank = g_world_rank, g_size = g_world_size;
}

dk_status dk_dist_sum(float *buf, int64_t n, float *work) {
    if (g_size == 1) return DK_OK;
    dk_status st = fits_int(n, "dk_dist_sum");
    if (st != DK_OK) return st;
    if (g_rank == 0) {
        for (int r = 1; r < g_size && st == DK_OK; r++) {
            st = mpi_check(MPI_Recv(work, (int)n, MPI_FLOAT, r, 0, g_comm,
                                    MPI_STATUS_IGNORE), "MPI_Recv");
            for (int64_t i = 0; st == DK_OK && i < n; i++) buf[i] += work[i];
        }
    } else {
        st = mpi_check(MPI_Send(buf, (int)n, MPI_FLOAT, 0, 0, g_comm), "MPI_Send");
    }
    if (st != DK_OK) return st;
    return mpi_check(MPI_Bcast(buf, (int)n, MPI_FLOAT, 0, g_comm), "MPI_Bcast");
}

dk_status dk_dist_sum_f64(double *buf, int n) {
    if (g_size == 1) return DK_OK;
    DK_ASSERT(n >= 0);
    double *all = g_rank == 0 ? malloc((size_t)(n ? n : 1) * sizeof *all) : NULL;
    if (g_rank == 0 && !all) return dk_fail(DK_ERR_NOMEM, "dk_dist_sum_f64: %d values", n);
    dk_status st = DK_OK;
    if (g_rank == 0) {
        for (int r = 1; r < g_size && st == DK_OK; r++) {
            st = mpi_check(MPI_Recv(all, n, MPI_DOUBLE, r, 1, g_comm, MPI_STATUS_IGNORE),
                           "MPI_Recv");
            for (int i = 0; st == DK_OK && i < n; i++) buf[i] += all[i];
        }
    } else {
        st = mpi_check(MPI_Send(buf, n, MPI_DOUBLE, 0, 1, g_comm), "MPI_Send");
    }
    free(all);
    if (st != DK_OK) return st;
    return mpi_check(MPI_Bcast(buf, n, MPI_DOUBLE, 0, g_comm), "MPI_Bcast");
}

dk_status dk_dist_gather(float *out, const float *in, const int64_t *counts) {
    if (g_size == 1) {
        if (counts[0]) memcpy(out, in, (size_t)counts[0] * sizeof(float));
        return DK_OK;
    }
    int *cnt = malloc((size_t)g_size * 2 * sizeof(int));
    if (!cnt) return dk_fail(DK_ERR_NOMEM, "dk_dist_gather: no memory for %d counts", g_size);
    int *disp = cnt + g_size;
    int64_t off = 0;
    dk_status st = DK_OK;
    for (int r = 0; r < g_size && st == DK_OK; r++) {
        st = fits_int(off + counts[r], "dk_dist_gather");
        cnt[r] = (int)counts[r], disp[r] = (int)off;
        off += counts[r];
    }
    if (st == DK_OK)
        st = mpi_check(MPI_Allgatherv(in, cnt[g_rank], MPI_FLOAT, out, cnt, disp, MPI_FLOAT,
                                      g_comm), "MPI_Allgatherv");
    free(cnt);
    return st;
}

dk_status dk_dist_bcast(void *buf, int64_t bytes, int root) {
    if (g_size == 1) return DK_OK;
    dk_status st = fits_int(bytes, "dk_dist_bcast");
    if (st != DK_OK) return st;
    return mpi_check(MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, g_comm), "MPI_Bcast");
}

int dk_dist_max(int v) {
    if (g_size == 1) return v;
    int out = v;
    /* an integer maximum is exact in any order; a failure keeps the own value */
    if (MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, g_comm) != MPI_SUCCESS) return v;
    return out;
}

#else /* the serial build: one rank */

dk_status dk_dist_init(int *argc, char ***argv) {
    (void)argc, (void)argv;
    int n = dk_dist_launched_size();
    if (n <= 1) return DK_OK;
    return dk_fail(DK_ERR_UNSUPPORTED, "built without MPI (DAKD_WITH_MPI=OFF), but started as "
                   "one of %d ranks: every rank would run the whole job; rebuild with Open MPI "
                   "(libopenmpi-dev) or run without mpirun", n);
}

void dk_dist_finalize(void) {}
void dk_dist_abort(int code) { (void)code; }
void dk_dist_detach(void) {}

static dk_status no_mpi(const char *call) {
    return dk_fail(DK_ERR_UNSUPPORTED, "%s: built without MPI", call);
}

dk_status dk_dist_send(const void *buf, int64_t bytes, int dest, int tag) {
    (void)buf, (void)bytes, (void)dest, (void)tag;
    return no_mpi("dk_dist_send");
}

dk_status dk_dist_recv(void *buf, int64_t bytes, int src, int tag, int *from) {
    (void)buf, (void)bytes, (void)src, (void)tag, (void)from;
    return no_mpi("dk_dist_recv");
}

int dk_dist_waiting(int tag) {
    (void)tag;
    return 0;
}

dk_status dk_dist_group_begin(const int *ranks, int n, int tag) {
    (void)ranks, (void)n, (void)tag;
    return no_mpi("dk_dist_group_begin");
}

void dk_dist_group_end(void) {}

dk_status dk_dist_sum(float *buf, int64_t n, float *work) {
    (void)buf, (void)n, (void)work;
    return DK_OK;
}

dk_status dk_dist_sum_f64(double *buf, int n) {
    (void)buf, (void)n;
    return DK_OK;
}

dk_status dk_dist_gather(float *out, const float *in, const int64_t *counts) {
    if (counts[0]) memcpy(out, in, (size_t)counts[0] * sizeof(float));
    return DK_OK;
}

dk_status dk_dist_bcast(void *buf, int64_t bytes, int root) {
    (void)buf, (void)bytes, (void)root;
    return DK_OK;
}

int dk_dist_max(int v) { return v; }

#endif
