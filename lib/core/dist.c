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

static int g_rank = 0, g_size = 1;
#if DAKD_WITH_MPI
static int g_mpi = 0; /* MPI_Init was called */
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
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    return DK_OK;
}

void dk_dist_finalize(void) {
    if (g_mpi) MPI_Finalize();
    g_mpi = 0;
}

void dk_dist_abort(int code) {
    if (g_mpi && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

dk_status dk_dist_sum(float *buf, int64_t n, float *work) {
    if (g_size == 1) return DK_OK;
    dk_status st = fits_int(n, "dk_dist_sum");
    if (st != DK_OK) return st;
    if (g_rank == 0) {
        for (int r = 1; r < g_size && st == DK_OK; r++) {
            st = mpi_check(MPI_Recv(work, (int)n, MPI_FLOAT, r, 0, MPI_COMM_WORLD,
                                    MPI_STATUS_IGNORE), "MPI_Recv");
            for (int64_t i = 0; st == DK_OK && i < n; i++) buf[i] += work[i];
        }
    } else {
        st = mpi_check(MPI_Send(buf, (int)n, MPI_FLOAT, 0, 0, MPI_COMM_WORLD), "MPI_Send");
    }
    if (st != DK_OK) return st;
    return mpi_check(MPI_Bcast(buf, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD), "MPI_Bcast");
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
                                      MPI_COMM_WORLD), "MPI_Allgatherv");
    free(cnt);
    return st;
}

dk_status dk_dist_bcast(void *buf, int64_t bytes, int root) {
    if (g_size == 1) return DK_OK;
    dk_status st = fits_int(bytes, "dk_dist_bcast");
    if (st != DK_OK) return st;
    return mpi_check(MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
}

int dk_dist_max(int v) {
    if (g_size == 1) return v;
    int out = v;
    /* an integer maximum is exact in any order; a failure keeps the own value */
    if (MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) return v;
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

dk_status dk_dist_sum(float *buf, int64_t n, float *work) {
    (void)buf, (void)n, (void)work;
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
