/* OpenBLAS kernel choice, libgomp's wait policy, and the one thread setting for BLAS and
 * OpenMP.
 *
 * Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not recognise recent Xeons and falls back
 * to its Prescott (SSE3) kernel, 5x slower than its SkylakeX kernel on the same CPU. It
 * reads OPENBLAS_CORETYPE only when the library initialises, before main(), so the fix is
 * to start the process again with the variable set — never overriding a user's value. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dakd/nn.h"

/* What this CPU (and its OS, which must save the wide registers) can run. */
static const char *best_coretype(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return NULL;
}

/* Kernels at least as good as `want` for this purpose. */
static int kernel_is_enough(const char *have, const char *want) {
    static const char *avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    static const char *avx2[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"};
    const char **set = strcmp(want, "SkylakeX") == 0 ? avx512 : avx2;
    size_t n = set == avx512 ? 3 : 5;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(have, set[i]) == 0) return 1;
    return 0;
}

const char *dk_blas_want_coretype(void) {
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (user && *user) return NULL; /* the user's choice stands */
    const char *want = best_coretype();
    if (!want) return NULL;
    const char *have = openblas_get_corename();
    return have && kernel_is_enough(have, want) ? NULL : want;
}

const char *dk_blas_kernel(void) {
    const char *k = openblas_get_corename();
    return k ? k : "unknown";
}

const char *dk_blas_config(void) {
    const char *c = openblas_get_config();
    return c ? c : "unknown";
}

static int g_threads;

void dk_set_threads(int n) {
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    g_threads = n;
    /* One pool: the kernels thread with OpenMP and call OpenBLAS single-threaded on their
     * own slices; OpenBLAS's own threads would spin against libgomp's on the same cores. */
    openblas_set_num_threads(1);
    omp_set_num_threads(n);
}

int dk_get_threads(void) {
    if (g_threads <= 0) dk_set_threads(0);
    return g_threads;
}

/* libgomp's wait policy when the user chose none: WAIT_VALUE for WAIT_VAR. libgomp reads it
 * only when it loads, before main(), hence the restart. Its default spins a waiting thread
 * for up to 300000 polls (~0.1-1 ms) before sleeping: on cores shared with another busy
 * process a spinning worker burns the time slice the working one needs, and a 2-thread
 * training step measured 3-6x slower than with WAIT_VALUE; on quiet cores they measured the
 * same (tests/bench/README.md). */
#define WAIT_VAR "OMP_WAIT_POLICY"
#define WAIT_VALUE "passive"

static int user_chose_wait(void) {
    const char *p = getenv("OMP_WAIT_POLICY"), *c = getenv("GOMP_SPINCOUNT");
    return (p && *p) || (c && *c);
}

void dk_blas_restart_if_needed(char **argv) {
    if (getenv("DAKD_BLAS_RESTARTED")) return;
    const char *core = dk_blas_want_coretype();
    int wait = !user_chose_wait();
    if (!core && !wait) return;
    /* DAKD_BLAS_RESTARTED names what dakd set, and stops a second restart */
    char set[64] = "";
    if (core && setenv("OPENBLAS_CORETYPE", core, 0) == 0) strcat(set, "OPENBLAS_CORETYPE ");
    if (wait && setenv(WAIT_VAR, WAIT_VALUE, 0) == 0) strcat(set, WAIT_VAR);
    if (!*set || setenv("DAKD_BLAS_RESTARTED", set, 1) != 0) return;
    /* the real path, so the process keeps its name (ps, top) instead of "exe" */
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = '\0';
        execv(self, argv);
    }
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the kernel and wait policy already loaded */
    if (core) unsetenv("OPENBLAS_CORETYPE");
    if (wait) unsetenv(WAIT_VAR);
    unsetenv("DAKD_BLAS_RESTARTED");
}

int dk_blas_chose(const char *var) {
    const char *set = getenv("DAKD_BLAS_RESTARTED");
    return set && var && *var && strstr(set, var) != NULL;
}
