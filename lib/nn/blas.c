/* OpenBLAS kernel choice and the one thread setting for BLAS and OpenMP.
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
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}

int dk_get_threads(void) {
    if (g_threads <= 0) dk_set_threads(0);
    return g_threads;
}

void dk_blas_restart_if_needed(char **argv) {
    const char *want = dk_blas_want_coretype();
    if (!want || getenv("DAKD_BLAS_RESTARTED")) return;
    if (setenv("OPENBLAS_CORETYPE", want, 0) != 0 || setenv("DAKD_BLAS_RESTARTED", "1", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the kernel already loaded */
    unsetenv("OPENBLAS_CORETYPE");
}
