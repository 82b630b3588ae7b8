/* dakd/dist.h in one process (rank 0 of 1): the serial collectives, the launcher's rank count,
 * the refusal of a build without MPI and the DAKD_DIST_FAIL debug option. Several ranks are
 * tested through the binary under mpirun (tests/train/mpi_train.sh, tests/study/mpi_study.sh). */
#include <stdlib.h>
#include <string.h>

#include "dakd/dist.h"
#include "test_util.h"

static void test_serial(void) {
    CU_ASSERT_EQUAL(dk_dist_rank(), 0);
    CU_ASSERT_EQUAL(dk_dist_size(), 1);
    float a[3] = {1.5f, -2, 3}, out[3] = {0};
    CU_ASSERT_EQUAL(dk_dist_sum(a, 3, NULL), DK_OK);
    CU_ASSERT(a[0] == 1.5f && a[1] == -2 && a[2] == 3); /* one rank: the sum is its own */
    int64_t counts[1] = {3};
    CU_ASSERT_EQUAL(dk_dist_gather(out, a, counts), DK_OK);
    CU_ASSERT_EQUAL(memcmp(out, a, sizeof a), 0);
    double parts[2] = {0.125, -3};
    CU_ASSERT_EQUAL(dk_dist_sum_f64(parts, 2), DK_OK);
    CU_ASSERT(parts[0] == 0.125 && parts[1] == -3);
    double v = 0.25;
    CU_ASSERT_EQUAL(dk_dist_bcast(&v, sizeof v, 0), DK_OK);
    CU_ASSERT_EQUAL(v, 0.25);
    CU_ASSERT_EQUAL(dk_dist_max(7), 7);
    dk_dist_abort(3); /* one rank: returns */
}

/* The study runner's messages and groups: a process alone has no one to talk to. */
static void test_alone(void) {
    CU_ASSERT_EQUAL(dk_dist_world_rank(), 0);
    CU_ASSERT_EQUAL(dk_dist_world_size(), 1);
    int v = 5, me = 0;
    CU_ASSERT_EQUAL(dk_dist_send(&v, sizeof v, 1, 7), DK_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(dk_dist_recv(&v, sizeof v, 0, 7, NULL), DK_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(v, 5);
    CU_ASSERT_EQUAL(dk_dist_waiting(7), 0);
    CU_ASSERT_EQUAL(dk_dist_group_begin(&me, 1, 9), DK_ERR_UNSUPPORTED);
    dk_dist_group_end();
    dk_dist_detach();
    CU_ASSERT_EQUAL(dk_dist_rank(), 0);
    CU_ASSERT_EQUAL(dk_dist_size(), 1);
}

/* The rank count a launcher announces; a build without MPI refuses to run as one of them. */
static void test_launched(void) {
    CU_ASSERT_EQUAL(dk_dist_launched_size(), 1);
    setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
    CU_ASSERT_EQUAL(dk_dist_launched_size(), 3);
    if (!dk_dist_built()) {
        int argc = 1;
        char *args[] = {"test", NULL}, **argv = args;
        CU_ASSERT_EQUAL(dk_dist_init(&argc, &argv), DK_ERR_UNSUPPORTED);
        CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "built without MPI"));
        CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "3 ranks"));
    }
    unsetenv("OMPI_COMM_WORLD_SIZE");
    setenv("PMI_SIZE", "1", 1);
    CU_ASSERT_EQUAL(dk_dist_launched_size(), 1);
    unsetenv("PMI_SIZE");
}

static void test_fault(void) {
    unsetenv("DAKD_DIST_FAIL");
    CU_ASSERT_EQUAL(dk_dist_fault(0), DK_OK);
    setenv("DAKD_DIST_FAIL", "0:3", 1);
    CU_ASSERT_EQUAL(dk_dist_fault(2), DK_OK);
    CU_ASSERT_EQUAL(dk_dist_fault(3), DK_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "rank 0 fails at step 3"));
    setenv("DAKD_DIST_FAIL", "1:3", 1); /* another rank's failure */
    CU_ASSERT_EQUAL(dk_dist_fault(3), DK_OK);
    const char *bad[] = {"1", "1:", ":3", "a:3", "1:3x", "-1:3", "1:-2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("DAKD_DIST_FAIL", bad[i], 1);
        CU_ASSERT_EQUAL(dk_dist_fault(3), DK_ERR_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "RANK:STEP"));
    }
    unsetenv("DAKD_DIST_FAIL");
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("core.dist", NULL, NULL);
    if (!s || !CU_add_test(s, "one rank: collectives copy or do nothing", test_serial) ||
        !CU_add_test(s, "launcher's rank count; built without MPI refuses", test_launched) ||
        !CU_add_test(s, "DAKD_DIST_FAIL", test_fault) ||
        !CU_add_test(s, "messages and groups need other ranks", test_alone)) {
        CU_cleanup_registry();
        return 1;
    }
    return dk_test_run();
}
