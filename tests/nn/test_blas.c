/* OpenBLAS kernel choice: dakd picks the fast kernel when the user has not chosen one,
 * never overrides a user's OPENBLAS_CORETYPE (nor OMP_WAIT_POLICY / GOMP_SPINCOUNT), and
 * results stay correct under every kernel this CPU can run (checked in child processes,
 * since OpenBLAS reads the variable only at start-up). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dakd/nn.h"
#include "test_util.h"

static char out[8192];

/* sgemm on awkward sizes against a double reference; returns the worst relative error. */
static double sgemm_error(int m, int n, int k, uint64_t seed) {
    float *a = malloc(sizeof(float) * (size_t)(m * k)), *b = malloc(sizeof(float) * (size_t)(k * n));
    float *c = malloc(sizeof(float) * (size_t)(m * n));
    dk_rng r;
    dk_rng_seed(&r, seed);
    for (int i = 0; i < m * k; i++) a[i] = 2 * dk_rng_uniform(&r) - 1;
    for (int i = 0; i < k * n; i++) b[i] = 2 * dk_rng_uniform(&r) - 1;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double ref = 0, mag = 0;
            for (int p = 0; p < k; p++) {
                ref += (double)a[i * k + p] * b[p * n + j];
                mag += fabs((double)a[i * k + p] * b[p * n + j]);
            }
            double e = fabs(c[i * n + j] - ref) / fmax(mag, 1e-30);
            worst = e > worst ? e : worst;
        }
    free(a), free(b), free(c);
    return worst;
}

/* Child mode: print the kernel and the sgemm error for a few shapes. */
static int child_main(void) {
    double e = 0;
    const int shapes[][3] = {{37, 29, 53}, {16, 4096, 144}, {1, 1, 1}, {130, 70, 257}};
    for (int i = 0; i < 4; i++) {
        double ei = sgemm_error(shapes[i][0], shapes[i][1], shapes[i][2], 7 + (uint64_t)i);
        e = ei > e ? ei : e;
    }
    printf("kernel=%s maxrelerr=%.3e\n", dk_blas_kernel(), e);
    return 0;
}

static const char *self_path;

static void test_sgemm_here(void) {
    double e = sgemm_error(37, 29, 53, 1);
    CU_ASSERT(e < 1e-5);
}

/* Every kernel the CPU can run gives float32-accurate results. */
static void test_kernels_correct(void) {
    const char *kernels[] = {"Prescott", "Haswell", "SkylakeX"};
    __builtin_cpu_init();
    int can[] = {1, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"),
                 __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                     __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")};
    for (int i = 0; i < 3; i++) {
        if (!can[i]) { /* not a missing oracle: there is nothing here to run it on */
            dk_test_note(kernels[i], "this CPU cannot run that kernel; not checked here");
            continue;
        }
        int rc = dk_test_sh(out, sizeof out, "OPENBLAS_CORETYPE=%s %s --child", kernels[i],
                            self_path);
        CU_ASSERT_EQUAL(rc, 0);
        char kernel[64] = "";
        double err = 1;
        CU_ASSERT_EQUAL(sscanf(out, "kernel=%63s maxrelerr=%lf", kernel, &err), 2);
        printf("\n    OPENBLAS_CORETYPE=%-9s -> kernel %-10s max rel err %.2e", kernels[i],
               kernel, err);
        CU_ASSERT(strcasecmp(kernel, kernels[i]) == 0);
        CU_ASSERT(err < 1e-5);
    }
}

/* The dakd command gets the fast kernel itself, or keeps one that is already good. */
static void test_cli_picks_kernel(void) {
    const char *want = dk_blas_want_coretype();
    int rc = dk_test_sh(out, sizeof out, "env -u OPENBLAS_CORETYPE -u DAKD_BLAS_RESTARTED %s "
                        "--version", dk_test_cli());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char *line = strstr(out, "OpenBLAS kernel ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    line[strcspn(line, "\n")] = '\0'; /* the kernel line only: the wait policy follows */
    printf("\n    %s", line);
    if (getenv("OPENBLAS_CORETYPE")) return; /* this test process was started with a choice */
    if (want) {
        CU_ASSERT_PTR_NOT_NULL(strstr(line, want));
        CU_ASSERT_PTR_NOT_NULL(strstr(line, "chosen by dakd"));
    } else {
        CU_ASSERT_PTR_NOT_NULL(strstr(line, dk_blas_kernel()));
        CU_ASSERT_PTR_NULL(strstr(line, "chosen by dakd"));
    }
}

/* A user's OPENBLAS_CORETYPE is never overridden. */
static void test_user_choice_stands(void) {
    int rc = dk_test_sh(out, sizeof out, "env -u DAKD_BLAS_RESTARTED OPENBLAS_CORETYPE=Prescott "
                        "%s --version", dk_test_cli());
    CU_ASSERT_EQUAL(rc, 0);
    char *line = strstr(out, "OpenBLAS kernel Prescott");
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    line[strcspn(line, "\n")] = '\0';
    CU_ASSERT_PTR_NULL(strstr(line, "chosen by dakd"));
}

/* dakd sets OMP_WAIT_POLICY=passive when the user chose no wait policy and no spin count,
 * and never overrides either. */
static void test_wait_policy(void) {
    const char *clear = "env -u DAKD_BLAS_RESTARTED -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT";
    int rc = dk_test_sh(out, sizeof out, "%s %s --version", clear, dk_test_cli());
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "OpenMP wait policy passive, chosen by dakd\n"));
    rc = dk_test_sh(out, sizeof out, "%s OMP_WAIT_POLICY=active %s --version", clear,
                    dk_test_cli());
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "OpenMP wait policy active\n"));
    rc = dk_test_sh(out, sizeof out, "%s GOMP_SPINCOUNT=5000 %s --version", clear, dk_test_cli());
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "OpenMP wait policy default, GOMP_SPINCOUNT 5000\n"));
}

static void test_threads(void) {
    dk_set_threads(1);
    CU_ASSERT_EQUAL(dk_get_threads(), 1);
    dk_set_threads(0);
    CU_ASSERT(dk_get_threads() >= 1);
    int rc = dk_test_sh(out, sizeof out, "%s --threads 1 --version", dk_test_cli());
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "threads 1"));
    CU_ASSERT_EQUAL(dk_test_sh(out, sizeof out, "%s --threads 0 --version", dk_test_cli()), 1);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--child") == 0) return child_main();
    self_path = argv[0];
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("blas", NULL, NULL);
    CU_add_test(s, "sgemm against a double reference", test_sgemm_here);
    CU_add_test(s, "every runnable kernel is correct", test_kernels_correct);
    CU_add_test(s, "dakd picks the fast kernel", test_cli_picks_kernel);
    CU_add_test(s, "a user's OPENBLAS_CORETYPE stands", test_user_choice_stands);
    CU_add_test(s, "one thread setting", test_threads);
    CU_add_test(s, "a user's OpenMP wait policy stands", test_wait_policy);
    return dk_test_run();
}
