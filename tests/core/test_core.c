/*
 * CUnit suite for lib/core: errors, logging, timer, progress, arena, tensors, RNG.
 */
#include "dakd/core.h"
#include "test_util.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ errors */

static void test_fail_records_message(void) {
    dk_clear_error();
    CU_ASSERT_STRING_EQUAL(dk_last_error(), "");
    dk_status st = dk_fail(DK_ERR_FORMAT, "%s: dim[%d]=%d exceeds %d", "scan.nii", 3, 70000, 32767);
    CU_ASSERT_EQUAL(st, DK_ERR_FORMAT);
    CU_ASSERT_STRING_EQUAL(dk_last_error(), "scan.nii: dim[3]=70000 exceeds 32767");
    /* The next failure overwrites. */
    st = dk_fail(DK_ERR_IO, "%s: cannot open", "b.nii");
    CU_ASSERT_EQUAL(st, DK_ERR_IO);
    CU_ASSERT_STRING_EQUAL(dk_last_error(), "b.nii: cannot open");
    dk_clear_error();
    CU_ASSERT_STRING_EQUAL(dk_last_error(), "");
}

/* A caller adds what it knows in front; the detector's text and status pass through. */
static void test_error_context(void) {
    dk_status st = dk_fail(DK_ERR_FORMAT, "%s: file cut short", "cut.nii.gz");
    st = dk_error_context(st, "%s:%d: case '%s'", "cases.csv", 7, "s05");
    CU_ASSERT_EQUAL(st, DK_ERR_FORMAT);
    CU_ASSERT_STRING_EQUAL(dk_last_error(), "cases.csv:7: case 's05': cut.nii.gz: file cut short");
    /* layers of context stack outside-in */
    CU_ASSERT_EQUAL(dk_error_context(st, "study.ini"), DK_ERR_FORMAT);
    CU_ASSERT_STRING_EQUAL(dk_last_error(),
                           "study.ini: cases.csv:7: case 's05': cut.nii.gz: file cut short");
    /* an argument may point at the message itself */
    dk_fail(DK_ERR_IO, "x");
    dk_error_context(DK_ERR_IO, "[%s]", dk_last_error());
    CU_ASSERT_STRING_EQUAL(dk_last_error(), "[x]: x");
    /* without a message the context stands alone; DK_OK still propagates as a failure */
    dk_clear_error();
    CU_ASSERT_EQUAL(dk_error_context(DK_OK, "a.nii"), DK_ERR_INTERNAL);
    CU_ASSERT_STRING_EQUAL(dk_last_error(), "a.nii");
    /* a message that no longer fits loses its end, never the context */
    char big[2000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    dk_fail(DK_ERR_ARG, "%s", big);
    CU_ASSERT_EQUAL(dk_error_context(DK_ERR_ARG, "ctx"), DK_ERR_ARG);
    const char *m = dk_last_error();
    CU_ASSERT(strncmp(m, "ctx: yyy", 8) == 0);
    CU_ASSERT(strlen(m) > 500 && strlen(m) < sizeof big - 1);
    CU_ASSERT_EQUAL(m[strlen(m) - 1], 'y');
    dk_clear_error();
}

static void test_fail_edge_cases(void) {
    /* A DK_OK status passed by mistake must still propagate as a failure. */
    CU_ASSERT_NOT_EQUAL(dk_fail(DK_OK, "oops"), DK_OK);
    /* An over-long message is truncated, not overflowed. */
    char big[4000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CU_ASSERT_EQUAL(dk_fail(DK_ERR_ARG, "%s", big), DK_ERR_ARG);
    size_t len = strlen(dk_last_error());
    CU_ASSERT(len > 500 && len < sizeof big - 1);
    CU_ASSERT_EQUAL(dk_last_error()[0], 'x');
    dk_clear_error();
}

typedef struct {
    char seen_at_start[64];
    char seen_after[64];
} thread_seen;

static void *thread_body(void *arg) {
    thread_seen *ts = arg;
    snprintf(ts->seen_at_start, sizeof ts->seen_at_start, "%s", dk_last_error());
    dk_fail(DK_ERR_NUMERIC, "worker: loss is %s", "NaN");
    snprintf(ts->seen_after, sizeof ts->seen_after, "%s", dk_last_error());
    return NULL;
}

static void test_error_thread_local(void) {
    dk_fail(DK_ERR_IO, "main: %s", "cannot open a.nii");
    thread_seen ts;
    memset(&ts, 0, sizeof ts);
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, thread_body, &ts) == 0);
    CU_ASSERT_FATAL(pthread_join(th, NULL) == 0);
    CU_ASSERT_STRING_EQUAL(ts.seen_at_start, "");
    CU_ASSERT_STRING_EQUAL(ts.seen_after, "worker: loss is NaN");
    CU_ASSERT_STRING_EQUAL(dk_last_error(), "main: cannot open a.nii");
    dk_clear_error();
}

static void test_status_names(void) {
    CU_ASSERT_STRING_EQUAL(dk_status_name(DK_OK), "ok");
    CU_ASSERT_STRING_EQUAL(dk_status_name(DK_ERR_FORMAT), "format error");
    CU_ASSERT_STRING_EQUAL(dk_status_name(DK_ERR_NOMEM), "out of memory");
    /* Every status has its own non-empty name. */
    for (int i = DK_OK; i <= DK_ERR_INTERNAL; i++) {
        const char *a = dk_status_name((dk_status)i);
        CU_ASSERT(a != NULL && a[0] != '\0');
        for (int j = i + 1; j <= DK_ERR_INTERNAL; j++)
            CU_ASSERT(strcmp(a, dk_status_name((dk_status)j)) != 0);
    }
    CU_ASSERT_STRING_EQUAL(dk_status_name((dk_status)99), "unknown status");
}

/* DK_ASSERT must print file:line and the expression, then abort: run it in a child. */
static void test_assert_aborts(void) {
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        volatile int two = 2;
        DK_ASSERT(two == 3);
        _exit(0);
    }
    close(fds[1]);
    char buf[512] = {0};
    size_t got = 0;
    ssize_t k;
    while (got < sizeof buf - 1 && (k = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)k;
    close(fds[0]);
    int status = 0;
    CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CU_ASSERT(strstr(buf, "test_core.c:") != NULL);
    CU_ASSERT(strstr(buf, ": assertion failed: two == 3") != NULL);
}

static void test_version_string(void) {
    const char *v = dk_version_string();
    CU_ASSERT_FATAL(v != NULL);
    CU_ASSERT_EQUAL(strncmp(v, "dakd 0.", 7), 0);
    CU_ASSERT(strstr(v, " (commit ") != NULL);
    CU_ASSERT_EQUAL(v[strlen(v) - 1], ')');
}

/* ------------------------------------------------------------------ logging */

typedef struct {
    int count;
    dk_log_level last_level;
    char last_msg[128];
} log_capture;

static void capture_sink(dk_log_level level, const char *msg, void *user) {
    log_capture *c = user;
    c->count++;
    c->last_level = level;
    snprintf(c->last_msg, sizeof c->last_msg, "%s", msg);
}

static void test_log_levels(void) {
    log_capture c;
    memset(&c, 0, sizeof c);
    dk_log_set_sink(capture_sink, &c, DK_LOG_WARN);
    dk_log(DK_LOG_DEBUG, "debug %d", 1);
    dk_log(DK_LOG_INFO, "info %d", 2);
    CU_ASSERT_EQUAL(c.count, 0);
    dk_log(DK_LOG_WARN, "spacing %.1f mm", 1.5);
    CU_ASSERT_EQUAL(c.count, 1);
    CU_ASSERT_EQUAL(c.last_level, DK_LOG_WARN);
    CU_ASSERT_STRING_EQUAL(c.last_msg, "spacing 1.5 mm");
    dk_log(DK_LOG_ERROR, "bad %s", "case");
    CU_ASSERT_EQUAL(c.count, 2);
    CU_ASSERT_EQUAL(c.last_level, DK_LOG_ERROR);
    CU_ASSERT_STRING_EQUAL(c.last_msg, "bad case");
    /* Lowering the level lets debug through; a NULL sink discards everything. */
    dk_log_set_sink(capture_sink, &c, DK_LOG_DEBUG);
    dk_log(DK_LOG_DEBUG, "now visible");
    CU_ASSERT_EQUAL(c.count, 3);
    dk_log_set_sink(NULL, NULL, DK_LOG_DEBUG);
    dk_log(DK_LOG_ERROR, "dropped");
    CU_ASSERT_EQUAL(c.count, 3);
}

/* Read the whole of a tmpfile into buf (NUL-terminated). */
static size_t slurp(FILE *f, char *buf, size_t n) {
    fflush(f);
    rewind(f);
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = '\0';
    return got;
}

static void test_log_stderr_sink(void) {
    FILE *f = tmpfile();
    CU_ASSERT_FATAL(f != NULL);
    dk_log_set_sink(dk_log_stderr_sink, f, DK_LOG_INFO);
    dk_log(DK_LOG_WARN, "hello %d", 7);
    dk_log(DK_LOG_DEBUG, "hidden");
    dk_log_set_sink(NULL, NULL, DK_LOG_INFO);
    char buf[256];
    slurp(f, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "[warn] hello 7\n");
    fclose(f);
}

/* ------------------------------------------------------------------ timer */

static void test_timer(void) {
    double t0 = dk_time_now();
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    double t1 = dk_time_now();
    CU_ASSERT(t1 - t0 >= 0.015);
    CU_ASSERT(t1 - t0 < 5.0);
    CU_ASSERT(dk_time_now() >= t1);
}

/* ------------------------------------------------------------------ progress */

static void test_format_duration(void) {
    static const struct {
        double s;
        const char *want;
    } cases[] = {
        {0.0, "0:00"},           {0.4, "0:00"},     {59.4, "0:59"},      {59.6, "1:00"},
        {61.0, "1:01"},          {3599.0, "59:59"}, {3600.0, "1:00:00"}, {3725.0, "1:02:05"},
        {360000.0, "100:00:00"}, {-1.0, "?:??"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dk_format_duration(buf, sizeof buf, cases[i].s);
        CU_ASSERT_STRING_EQUAL(buf, cases[i].want);
    }
    dk_format_duration(buf, sizeof buf, NAN);
    CU_ASSERT_STRING_EQUAL(buf, "?:??");
    dk_format_duration(buf, sizeof buf, INFINITY);
    CU_ASSERT_STRING_EQUAL(buf, "?:??");
    /* A short buffer is truncated and terminated, never overrun. */
    memset(buf, 'Z', sizeof buf);
    dk_format_duration(buf, 4, 3725.0);
    CU_ASSERT_STRING_EQUAL(buf, "1:0");
    CU_ASSERT_EQUAL(buf[4], 'Z');
}

/* A sink that writes each event as one short record: "B train 0/10", "S train 3/10",
 * "I train epoch 2", "E train", "H windows", "W windows" (show), with the parent's label. */
static char events[4096];

static void record_sink(dk_progress_event ev, const dk_progress *p, void *user) {
    (void)user;
    static const char code[] = "BSIEHW";
    size_t k = strlen(events);
    snprintf(events + k, sizeof events - k, "%c %s%s%s %lld/%lld %s;", code[ev],
             p->parent ? p->parent->label : "", p->parent ? ">" : "", p->label,
             (long long)p->done, (long long)p->total, p->item);
}

static void log_into_events(dk_log_level level, const char *msg, void *user) {
    (void)level, (void)user;
    size_t k = strlen(events);
    snprintf(events + k, sizeof events - k, "log %s;", msg);
}

static void test_progress_events(void) {
    events[0] = '\0';
    dk_progress_set_sink(record_sink, NULL);
    CU_ASSERT_PTR_NULL(dk_progress_current());
    dk_progress cases, win;
    dk_progress_begin(&cases, "predict", 2);
    CU_ASSERT_PTR_EQUAL(dk_progress_current(), &cases);
    dk_progress_item(&cases, "case_%03d", 7);
    dk_progress_begin(&win, "windows", 0); /* nested: the chain leads back to the cases */
    CU_ASSERT_PTR_EQUAL(win.parent, &cases);
    CU_ASSERT_PTR_EQUAL(dk_progress_current(), &win);
    dk_progress_step(&win, 3);
    dk_progress_end(&win);
    CU_ASSERT_PTR_EQUAL(dk_progress_current(), &cases);
    dk_progress_step(&cases, 1);
    dk_progress_end(&cases);
    CU_ASSERT_PTR_NULL(dk_progress_current());
    CU_ASSERT_STRING_EQUAL(events, "B predict 0/2 ;I predict 0/2 case_007;B predict>windows 0/0 ;"
                                   "S predict>windows 3/0 ;E predict>windows 3/0 ;"
                                   "S predict 1/2 case_007;E predict 1/2 case_007;");
    /* a long item is cut, never overrun */
    dk_progress_begin(&cases, "x", 1);
    char long_id[300];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    dk_progress_item(&cases, "%s", long_id);
    CU_ASSERT_EQUAL(strlen(cases.item), sizeof cases.item - 1);
    dk_progress_end(&cases);
    /* without a sink, reporters only count */
    dk_progress_set_sink(NULL, NULL);
    events[0] = '\0';
    dk_progress_begin(&cases, "quiet", 5);
    dk_progress_step(&cases, 5);
    CU_ASSERT_EQUAL(cases.done, 5);
    dk_progress_end(&cases);
    CU_ASSERT_STRING_EQUAL(events, "");
}

/* A log line while a reporter is open: the sink hears HIDE before it and SHOW after, so a
 * bar never shares the log's line; with none open, nothing (there is no bar to clear). */
static void test_progress_log_frames(void) {
    events[0] = '\0';
    dk_progress_set_sink(record_sink, NULL);
    dk_log_set_sink(log_into_events, NULL, DK_LOG_INFO);
    dk_log(DK_LOG_INFO, "before");
    dk_progress p;
    dk_progress_begin(&p, "train", 4);
    dk_progress_step(&p, 1);
    dk_log(DK_LOG_INFO, "epoch %d", 1);
    dk_log(DK_LOG_DEBUG, "filtered out, so no frame either");
    dk_progress_hide(); /* nested hides: one HIDE, one SHOW */
    dk_progress_hide();
    dk_progress_show();
    dk_progress_show();
    dk_progress_show(); /* unbalanced: ignored */
    dk_progress_end(&p);
    dk_log_set_sink(NULL, NULL, DK_LOG_INFO);
    dk_progress_set_sink(NULL, NULL);
    CU_ASSERT_STRING_EQUAL(events, "log before;B train 0/4 ;S train 1/4 ;H train 1/4 ;"
                                   "log epoch 1;W train 1/4 ;H train 1/4 ;W train 1/4 ;"
                                   "E train 1/4 ;");
}

/* ------------------------------------------------------------------ arena */

static int aligned64(const void *p) { return ((uintptr_t)p & 63u) == 0; }

static void test_arena_alignment(void) {
    dk_arena a;
    CU_ASSERT_FATAL(dk_arena_init(&a, 1000) == DK_OK);
    CU_ASSERT(a.capacity >= 1000);
    CU_ASSERT(aligned64(a.base));
    void *p1 = dk_arena_alloc(&a, 1);
    void *p2 = dk_arena_alloc(&a, 100);
    void *p3 = dk_arena_alloc(&a, 64);
    CU_ASSERT(p1 && p2 && p3);
    CU_ASSERT(aligned64(p1) && aligned64(p2) && aligned64(p3));
    CU_ASSERT((unsigned char *)p2 - (unsigned char *)p1 == 64);
    CU_ASSERT((unsigned char *)p3 - (unsigned char *)p2 == 128);
    CU_ASSERT_EQUAL(a.used, 256);
    CU_ASSERT_EQUAL(a.high_water, 256);
    dk_arena_free(&a);
    CU_ASSERT(a.base == NULL && a.capacity == 0 && a.used == 0);
}

static void test_arena_exhaustion(void) {
    dk_arena a;
    CU_ASSERT_FATAL(dk_arena_init(&a, 256) == DK_OK);
    CU_ASSERT(dk_arena_alloc(&a, 200) != NULL);
    CU_ASSERT(dk_arena_alloc(&a, 64) == NULL);
    CU_ASSERT_EQUAL(a.used, 256);
    dk_arena_reset(&a);
    CU_ASSERT(dk_arena_alloc(&a, 257) == NULL);
    CU_ASSERT(dk_arena_alloc(&a, SIZE_MAX) == NULL);
    CU_ASSERT(dk_arena_alloc(&a, 256) != NULL);
    CU_ASSERT(dk_arena_alloc(NULL, 1) == NULL);
    dk_arena_free(&a);
    CU_ASSERT(dk_arena_alloc(&a, 1) == NULL);
    /* An impossible capacity fails with a message, not a crash. */
    dk_clear_error();
    CU_ASSERT_EQUAL(dk_arena_init(&a, SIZE_MAX), DK_ERR_NOMEM);
    CU_ASSERT(strstr(dk_last_error(), "arena") != NULL);
    CU_ASSERT(a.base == NULL);
}

static void test_arena_mark_release(void) {
    dk_arena a;
    CU_ASSERT_FATAL(dk_arena_init(&a, 4096) == DK_OK);
    CU_ASSERT(dk_arena_alloc(&a, 100) != NULL);
    size_t m = dk_arena_mark(&a);
    CU_ASSERT_EQUAL(m, 128);
    unsigned char *p = dk_arena_alloc(&a, 1000);
    CU_ASSERT_FATAL(p != NULL);
    memset(p, 0xAB, 1000);
    dk_arena_release(&a, m);
    CU_ASSERT_EQUAL(a.used, m);
    CU_ASSERT_EQUAL(a.high_water, 128 + 1024);
    /* The released region is handed out again, and calloc really zeroes it. */
    unsigned char *q = dk_arena_calloc(&a, 500);
    CU_ASSERT_PTR_EQUAL(q, p);
    int zero = 1;
    for (int i = 0; i < 500; i++) zero &= q[i] == 0;
    CU_ASSERT(zero);
    CU_ASSERT_EQUAL(a.high_water, 128 + 1024);
    dk_arena_reset(&a);
    CU_ASSERT_EQUAL(a.used, 0);
    CU_ASSERT_EQUAL(a.high_water, 128 + 1024);
    CU_ASSERT(dk_arena_alloc(&a, 2048) != NULL);
    CU_ASSERT_EQUAL(a.high_water, 2048);
    dk_arena_free(&a);
    dk_arena_free(&a);
    dk_arena_free(NULL);
    dk_arena z;
    memset(&z, 0, sizeof z);
    dk_arena_free(&z);
}

static void test_alloc_aligned(void) {
    float *f = dk_alloc_aligned(1000, sizeof(float));
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(aligned64(f));
    f[999] = 1.0f;
    dk_free(f);
    CU_ASSERT(dk_alloc_aligned(SIZE_MAX / 2 + 1, 2) == NULL);
    CU_ASSERT(dk_alloc_aligned(SIZE_MAX, SIZE_MAX) == NULL);
    void *z = dk_alloc_aligned(0, 4);
    CU_ASSERT(z != NULL && aligned64(z));
    dk_free(z);
    dk_free(NULL);
}

/* From 2 MiB up on a 2 MiB boundary (huge pages), below it as dk_alloc_aligned. */
static void test_alloc_large(void) {
    const size_t n = (size_t)5 << 20;
    unsigned char *p = dk_alloc_large(n, 1);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_EQUAL((uintptr_t)p % ((uintptr_t)2 << 20), 0);
    memset(p, 7, n);
    CU_ASSERT_EQUAL(p[n - 1], 7);
    dk_free(p);
    float *f = dk_alloc_large(1000, sizeof(float));
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(aligned64(f));
    dk_free(f);
    CU_ASSERT(dk_alloc_large(SIZE_MAX / 2 + 1, 2) == NULL);
}

/* ------------------------------------------------------------------ tensors */

static void test_tensor_numel(void) {
    dk_tensor t = dk_tensor_view(NULL, 2, 3, 4, 5, 6);
    CU_ASSERT_EQUAL(dk_tensor_numel(&t), 720);
    t = dk_tensor_view(NULL, 2, 3, -1, 5, 6);
    CU_ASSERT_EQUAL(dk_tensor_numel(&t), 0);
    t = dk_tensor_view(NULL, 2, 0, 4, 5, 6);
    CU_ASSERT_EQUAL(dk_tensor_numel(&t), 0);
    t = dk_tensor_view(NULL, INT64_MAX / 2, 3, 1, 1, 1);
    CU_ASSERT_EQUAL(dk_tensor_numel(&t), 0);
    t = dk_tensor_view(NULL, 8192, 8192, 8192, 8192, 8192); /* 2^65 */
    CU_ASSERT_EQUAL(dk_tensor_numel(&t), 0);
    t = dk_tensor_view(NULL, INT64_MAX, 1, 1, 1, 1);
    CU_ASSERT_EQUAL(dk_tensor_numel(&t), INT64_MAX);
    CU_ASSERT_EQUAL(dk_tensor_numel(NULL), 0);
}

static void test_tensor_alloc(void) {
    dk_tensor t;
    CU_ASSERT_FATAL(dk_tensor_alloc(&t, 2, 3, 4, 5, 6) == DK_OK);
    CU_ASSERT(t.owned == 1 && aligned64(t.data));
    CU_ASSERT_EQUAL(dk_tensor_numel(&t), 720);
    int zero = 1;
    for (int i = 0; i < 720; i++) zero &= t.data[i] == 0.0f;
    CU_ASSERT(zero);
    /* W fastest, then H, D, C, N. */
    CU_ASSERT_PTR_EQUAL(dk_tensor_at(&t, 1, 2, 3, 4, 5), t.data + 719);
    CU_ASSERT_PTR_EQUAL(dk_tensor_at(&t, 0, 0, 0, 1, 0), t.data + 6);
    CU_ASSERT_PTR_EQUAL(dk_tensor_at(&t, 0, 1, 0, 0, 0), t.data + 120);
    CU_ASSERT_PTR_EQUAL(dk_tensor_at(&t, 1, 0, 0, 0, 0), t.data + 360);
    dk_tensor_free(&t);
    CU_ASSERT(t.data == NULL && t.n == 0 && t.owned == 0);
    dk_tensor_free(&t);
    dk_tensor_free(NULL);
}

static void test_tensor_alloc_bad_dims(void) {
    dk_tensor t;
    dk_clear_error();
    CU_ASSERT_EQUAL(dk_tensor_alloc(&t, 8192, 8192, 8192, 8192, 8192), DK_ERR_ARG);
    CU_ASSERT(t.data == NULL);
    CU_ASSERT(strstr(dk_last_error(), "8192") != NULL);
    /* numel fits int64 but the byte count does not fit size_t. */
    CU_ASSERT_EQUAL(dk_tensor_alloc(&t, INT64_C(1) << 62, 1, 1, 1, 1), DK_ERR_ARG);
    CU_ASSERT(t.data == NULL);
    CU_ASSERT_EQUAL(dk_tensor_alloc(&t, 1, 1, 1, 4, -4), DK_ERR_ARG);
    CU_ASSERT(strstr(dk_last_error(), "-4") != NULL);
    CU_ASSERT_EQUAL(dk_tensor_alloc(&t, 1, 1, 0, 4, 4), DK_ERR_ARG);
}

static void test_tensor_view_and_arena(void) {
    float buf[24] = {0};
    dk_tensor v = dk_tensor_view(buf, 1, 2, 1, 3, 4);
    CU_ASSERT(v.owned == 0 && v.data == buf);
    *dk_tensor_at(&v, 0, 1, 0, 2, 3) = 7.0f;
    CU_ASSERT_EQUAL(buf[23], 7.0f);
    dk_tensor_free(&v); /* must not free the stack buffer */
    CU_ASSERT(v.data == NULL);

    dk_arena a;
    CU_ASSERT_FATAL(dk_arena_init(&a, 1024) == DK_OK);
    dk_tensor t;
    CU_ASSERT_EQUAL(dk_tensor_arena(&t, &a, 1, 2, 1, 10, 10), DK_OK); /* 800 bytes */
    CU_ASSERT(t.owned == 0 && aligned64(t.data));
    CU_ASSERT_EQUAL(t.data[199], 0.0f);
    dk_tensor u;
    dk_clear_error();
    CU_ASSERT_EQUAL(dk_tensor_arena(&u, &a, 1, 1, 1, 10, 10), DK_ERR_NOMEM);
    CU_ASSERT(u.data == NULL);
    CU_ASSERT(strstr(dk_last_error(), "arena") != NULL);
    CU_ASSERT_EQUAL(dk_tensor_arena(&u, &a, 1, 1, 1, 0, 10), DK_ERR_ARG);
    dk_tensor_free(&t);
    dk_arena_free(&a);

    dk_tensor x = dk_tensor_view(NULL, 1, 2, 3, 4, 5), y = x, z = x;
    z.h = 5;
    CU_ASSERT(dk_tensor_same_shape(&x, &y));
    CU_ASSERT(!dk_tensor_same_shape(&x, &z));
    CU_ASSERT(!dk_tensor_same_shape(&x, NULL));
}

/* ------------------------------------------------------------------ RNG */

/* First outputs of the reference xoshiro256** seeded with the reference splitmix64
 * (computed with a direct Python port of Vigna's xoshiro256starstar.c / splitmix64.c). */
static void test_rng_reference_values(void) {
    static const uint64_t want0[5] = {UINT64_C(0x99ec5f36cb75f2b4), UINT64_C(0xbf6e1f784956452a),
                                      UINT64_C(0x1a5f849d4933e6e0), UINT64_C(0x6aa594f1262d2d2c),
                                      UINT64_C(0xbba5ad4a1f842e59)};
    static const uint64_t want42[5] = {UINT64_C(0x15780b2e0c2ec716), UINT64_C(0x6104d9866d113a7e),
                                       UINT64_C(0xae17533239e499a1), UINT64_C(0xecb8ad4703b360a1),
                                       UINT64_C(0xfde6dc7fe2ec5e64)};
    dk_rng r;
    dk_rng_seed(&r, 0);
    /* splitmix64(0)'s first output is the published 0xe220a8397b1dcdaf. */
    CU_ASSERT_EQUAL(r.s[0], UINT64_C(0xe220a8397b1dcdaf));
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(dk_rng_u64(&r), want0[i]);
    dk_rng_seed(&r, 42);
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(dk_rng_u64(&r), want42[i]);
}

static void test_rng_reproducible(void) {
    dk_rng a, b, c;
    dk_rng_seed(&a, 1234);
    dk_rng_seed(&b, 1234);
    dk_rng_seed(&c, 1235);
    int same = 1, collide = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = dk_rng_u64(&a), y = dk_rng_u64(&b), z = dk_rng_u64(&c);
        same &= x == y;
        collide += x == z;
    }
    CU_ASSERT(same);
    CU_ASSERT_EQUAL(collide, 0);
}

static void test_rng_uniform(void) {
    dk_rng r;
    dk_rng_seed(&r, 7);
    int in_range = 1;
    double sum_f = 0.0, sum_d = 0.0;
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        float f = dk_rng_uniform(&r);
        double d = dk_rng_uniform_double(&r);
        in_range &= f >= 0.0f && f < 1.0f && d >= 0.0 && d < 1.0;
        sum_f += f;
        sum_d += d;
    }
    CU_ASSERT(in_range);
    /* sd of the mean is 1/sqrt(12 n) ~ 0.0009; allow ~10 sd. */
    CU_ASSERT_DOUBLE_EQUAL(sum_f / n, 0.5, 0.01);
    CU_ASSERT_DOUBLE_EQUAL(sum_d / n, 0.5, 0.01);
}

static void test_rng_below(void) {
    dk_rng r;
    dk_rng_seed(&r, 99);
    int ok = 1;
    for (int i = 0; i < 1000; i++) ok &= dk_rng_below(&r, 1) == 0;
    /* n just above 2^63 rejects almost half of all draws: the worst case. */
    const uint64_t big = (UINT64_C(1) << 63) + 1;
    for (int i = 0; i < 1000; i++) ok &= dk_rng_below(&r, big) < big;
    enum { K = 10, N = 100000 };
    long count[K] = {0};
    for (int i = 0; i < N; i++) {
        uint64_t x = dk_rng_below(&r, K);
        ok &= x < K;
        count[x < K ? x : 0]++;
    }
    CU_ASSERT(ok);
    double chi2 = 0.0, expect = (double)N / K;
    for (int k = 0; k < K; k++) chi2 += (count[k] - expect) * (count[k] - expect) / expect;
    /* 9 degrees of freedom: P(chi2 > 40) < 1e-5. */
    CU_ASSERT(chi2 < 40.0);
}

static void test_rng_normal(void) {
    dk_rng r;
    dk_rng_seed(&r, 2024);
    const int n = 100000;
    double sum = 0.0, sum2 = 0.0;
    int finite = 1;
    for (int i = 0; i < n; i++) {
        double x = dk_rng_normal(&r);
        finite &= isfinite(x);
        sum += x;
        sum2 += x * x;
    }
    double mean = sum / n, var = sum2 / n - mean * mean;
    CU_ASSERT(finite);
    CU_ASSERT_DOUBLE_EQUAL(mean, 0.0, 0.02); /* sd of the mean ~ 0.003 */
    CU_ASSERT_DOUBLE_EQUAL(var, 1.0, 0.03); /* sd of the variance ~ 0.0045 */
    /* No hidden cache: a copy of the state continues the same stream. */
    dk_rng copy = r;
    int same = 1;
    for (int i = 0; i < 10; i++) same &= dk_rng_normal(&r) == dk_rng_normal(&copy);
    CU_ASSERT(same);
}

static int streams_collide(dk_rng a, dk_rng b) {
    int hits = 0;
    for (int i = 0; i < 256; i++) hits += dk_rng_u64(&a) == dk_rng_u64(&b);
    return hits;
}

static void test_rng_split(void) {
    dk_rng r, other;
    dk_rng_seed(&r, 5);
    dk_rng_seed(&other, 6);
    const dk_rng before = r;
    dk_rng a = dk_rng_split(&r, 0), b = dk_rng_split(&r, 1);
    CU_ASSERT(memcmp(&r, &before, sizeof r) == 0);
    dk_rng a2 = dk_rng_split(&r, 0);
    CU_ASSERT(memcmp(&a, &a2, sizeof a) == 0);
    CU_ASSERT_EQUAL(streams_collide(a, b), 0);
    CU_ASSERT_EQUAL(streams_collide(a, r), 0);
    CU_ASSERT_EQUAL(streams_collide(b, r), 0);
    CU_ASSERT_EQUAL(streams_collide(a, dk_rng_split(&other, 0)), 0);
    /* Splitting after the parent advances gives a new family of streams. */
    dk_rng_u64(&r);
    CU_ASSERT_EQUAL(streams_collide(a, dk_rng_split(&r, 0)), 0);
}

/* ------------------------------------------------------------------ order statistics */

static void test_sort_median(void) {
    double v[] = {3, -1, 2.5, 7, 0};
    dk_sort_doubles(v, 5);
    for (int i = 1; i < 5; i++) CU_ASSERT(v[i - 1] <= v[i]);
    double odd[] = {9, 1, 5}, even[] = {4, 1, 3, 2}, one[] = {-2};
    CU_ASSERT_EQUAL(dk_median(odd, 3), 5.0);
    CU_ASSERT_EQUAL(dk_median(even, 4), 2.5);
    CU_ASSERT_EQUAL(dk_median(one, 1), -2.0);
}

/* Selection finds what a sort puts at k, and leaves nothing smaller right of k. */
static void test_select(void) {
    enum { N = 257 };
    dk_rng r;
    dk_rng_seed(&r, 5);
    double d[N], ds[N];
    float f[N];
    for (int trial = 0; trial < 40; trial++) {
        int n = 1 + (int)dk_rng_below(&r, N);
        for (int i = 0; i < n; i++) /* few distinct values: many ties */
            ds[i] = (double)(int)dk_rng_below(&r, trial % 2 ? 7 : 1000) - 3;
        dk_sort_doubles(ds, n);
        for (int k = 0; k < n; k += 1 + n / 9) {
            memcpy(d, ds, (size_t)n * sizeof *d);
            for (int i = n - 1; i > 0; i--) { /* shuffle */
                int j = (int)dk_rng_below(&r, (uint64_t)i + 1);
                double t = d[i];
                d[i] = d[j], d[j] = t;
            }
            for (int i = 0; i < n; i++) f[i] = (float)d[i];
            CU_ASSERT_EQUAL(dk_select_double(d, n, k), ds[k]);
            CU_ASSERT_EQUAL(dk_select_float(f, n, k), (float)ds[k]);
            for (int i = k + 1; i < n; i++) {
                CU_ASSERT(d[i] >= d[k]);
                CU_ASSERT(f[i] >= f[k]);
            }
        }
    }
}

/* numpy.percentile([4, 1, 3, 2, 10], p) with numpy 1.24, to the last bit. */
static void test_percentile_numpy(void) {
    static const double p[] = {0, 10, 25, 50, 62.5, 90, 95, 100};
    static const double want[] = {1.0, 1.4, 2.0, 3.0, 3.5, 7.6000000000000005,
                                  8.799999999999999, 10.0};
    const double v[] = {4, 1, 3, 2, 10};
    double sorted[] = {1, 2, 3, 4, 10}, w[5];
    for (int i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL(dk_percentile_sorted(sorted, 5, p[i]), want[i]);
        memcpy(w, v, sizeof v);
        CU_ASSERT_EQUAL(dk_percentile_select(w, 5, p[i]), want[i]);
    }
    double one = 7;
    CU_ASSERT_EQUAL(dk_percentile_sorted(&one, 1, 95), 7.0);
    CU_ASSERT_EQUAL(dk_percentile_select(&one, 1, 5), 7.0);
}

/* Selection and sorting give the same bits for every p; the float form is within an ulp. */
static void test_percentile_forms_agree(void) {
    enum { N = 301 };
    dk_rng r;
    dk_rng_seed(&r, 11);
    double v[N], s[N], w[N];
    float fv[N], fw[N];
    for (int trial = 0; trial < 30; trial++) {
        int n = 1 + (int)dk_rng_below(&r, N);
        for (int i = 0; i < n; i++) {
            fv[i] = (float)(dk_rng_normal(&r) * 100.0);
            v[i] = s[i] = fv[i];
        }
        dk_sort_doubles(s, n);
        for (double p = 0; p <= 100; p += 2.5) {
            memcpy(w, v, (size_t)n * sizeof *w);
            double a = dk_percentile_sorted(s, n, p), b = dk_percentile_select(w, n, p);
            CU_ASSERT_EQUAL(a, b);
            double c = dk_percentile(fv, n, p, fw);
            CU_ASSERT(fabs(c - a) <= 4e-16 * fmax(fabs(a), 1.0));
        }
        for (int i = 0; i < n; i++) CU_ASSERT_EQUAL(v[i], (double)fv[i]); /* vals unchanged */
    }
}

/* ------------------------------------------------------------------ text */

static void test_sbuf(void) {
    dk_sbuf b = {0};
    dk_sb_puts(&b, "a");
    dk_sb_printf(&b, "%d-%s", 42, "x");
    dk_sb_putn(&b, "yz!", 2);
    CU_ASSERT_STRING_EQUAL(b.s, "a42-xyz");
    CU_ASSERT_EQUAL(b.len, 7);
    for (int i = 0; i < 1000; i++) dk_sb_puts(&b, "0123456789");
    CU_ASSERT_EQUAL(b.len, 10007);
    CU_ASSERT_EQUAL(strlen(b.s), 10007);
    CU_ASSERT_EQUAL(b.oom, 0);
    dk_sb_free(&b);
    CU_ASSERT_PTR_NULL(b.s);
    dk_sb_free(NULL);
    dk_sb_html(&b, "<a href=\"x\">Tom & 'Jerry'</a>");
    CU_ASSERT_STRING_EQUAL(b.s, "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;");
    dk_sb_free(&b);
    dk_sb_num(&b, 0.1);
    dk_sb_puts(&b, " ");
    dk_sb_num(&b, NAN);
    dk_sb_puts(&b, " ");
    dk_sb_num(&b, -INFINITY);
    CU_ASSERT_STRING_EQUAL(b.s, "0.10000000000000001 nan -inf");
    dk_sb_free(&b);
    /* RFC 4648 test vectors */
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                       "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        dk_sb_puts(&b, "");
        dk_sb_base64(&b, (const unsigned char *)in[i], strlen(in[i]));
        CU_ASSERT_STRING_EQUAL(b.s, want[i]);
        dk_sb_free(&b);
    }
}

static void test_sbuf_write_file(void) {
    const char *p = dk_test_path(dk_test_tmpdir(), "sbuf.txt");
    dk_sbuf b = {0};
    dk_sb_puts(&b, "hello\n");
    CU_ASSERT_EQUAL(dk_sb_write_file(&b, p), DK_OK);
    char *got = NULL;
    CU_ASSERT_EQUAL_FATAL(dk_read_file(&got, NULL, p), DK_OK);
    CU_ASSERT_STRING_EQUAL(got, "hello\n");
    free(got);
    b.oom = 1; /* an incomplete text is refused, not written */
    CU_ASSERT_EQUAL(dk_sb_write_file(&b, p), DK_ERR_NOMEM);
    dk_sb_free(&b);
    CU_ASSERT_EQUAL(dk_sb_write_file(&b, dk_test_path(p, "under_a_file.txt")), DK_ERR_IO);
}

/* ------------------------------------------------------------------ folders */

static void touch(const char *path) {
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("x", f);
    fclose(f);
}

static void test_remove_tree(void) {
    const char *root = dk_test_path(dk_test_tmpdir(), "tree");
    const char *keep = dk_test_path(dk_test_tmpdir(), "tree_keep.txt");
    char p[4096];
    snprintf(p, sizeof p, "%s/a/b/c", root);
    CU_ASSERT_EQUAL_FATAL(dk_mkdirs(p), DK_OK);
    touch(keep);
    snprintf(p, sizeof p, "%s/a/b/c/f.txt", root);
    touch(p);
    snprintf(p, sizeof p, "%s/top.txt", root);
    touch(p);
    snprintf(p, sizeof p, "%s/a/link", root); /* a link is removed, its target kept */
    CU_ASSERT_EQUAL_FATAL(symlink(keep, p), 0);
    snprintf(p, sizeof p, "%s/a/dirlink", root);
    CU_ASSERT_EQUAL_FATAL(symlink(dk_test_tmpdir(), p), 0);
    CU_ASSERT_EQUAL(dk_remove_tree(root), DK_OK);
    CU_ASSERT(!dk_test_exists(root));
    CU_ASSERT(dk_test_exists(keep));
    CU_ASSERT(dk_test_exists(dk_test_tmpdir()));
    CU_ASSERT_EQUAL(dk_remove_tree(root), DK_OK); /* absent: nothing to do */
    touch(root);                                   /* a plain file goes too */
    CU_ASSERT_EQUAL(dk_remove_tree(root), DK_OK);
    CU_ASSERT(!dk_test_exists(root));
    remove(keep);
}

/* A failure names the entry; the clean-up form keeps the caller's message. */
static void test_remove_tree_failure(void) {
    const char *root = dk_test_path(dk_test_tmpdir(), "tree_fail");
    char p[4096];
    snprintf(p, sizeof p, "%s/sub", root);
    CU_ASSERT_EQUAL_FATAL(dk_mkdirs(p), DK_OK);
    char longname[5000];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CU_ASSERT_EQUAL(dk_remove_tree(longname), DK_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "cannot remove"));
    dk_fail(DK_ERR_FORMAT, "the first failure");
    dk_discard_tree(longname);
    CU_ASSERT_STRING_EQUAL(dk_last_error(), "the first failure");
    dk_discard_tree(root);
    CU_ASSERT(!dk_test_exists(root));
    CU_ASSERT_STRING_EQUAL(dk_last_error(), "the first failure");
}

/* ------------------------------------------------------------------ INI parsing */

typedef struct {
    dk_ini_source src;
    char log[512];
    int fail_on; /* key that fails ("" = none) */
} ini_probe;

static int probe_key(void *user, const char *section, const char *key, const char *value) {
    ini_probe *c = user;
    size_t n = strlen(c->log);
    snprintf(c->log + n, sizeof c->log - n, "%d:[%s]%s=%s;", c->src.line, section, key, value);
    if (strcmp(key, "bad") == 0) {
        c->src.st = dk_fail(DK_ERR_ARG, "%s:%d: bad key", c->src.name, c->src.line);
        return 0;
    }
    return 1;
}

static dk_status parse_text(ini_probe *c, const char *text) {
    memset(c, 0, sizeof *c);
    c->src.name = "t.ini";
    c->src.text = text;
    return dk_ini_parse(&c->src, probe_key, c);
}

static void test_ini_parse_text(void) {
    ini_probe c;
    CU_ASSERT_EQUAL(parse_text(&c, "; comment\n[a]\nx = 1\n\n[b]\ny = two ; note\n"), DK_OK);
    CU_ASSERT_STRING_EQUAL(c.log, "3:[a]x=1;6:[b]y=two;");
    CU_ASSERT_EQUAL(parse_text(&c, "[a]\nx = 1\nbad = 2\ny = 3\n"), DK_ERR_ARG);
    CU_ASSERT_STRING_EQUAL(dk_last_error(), "t.ini:3: bad key");
    CU_ASSERT_STRING_EQUAL(c.log, "2:[a]x=1;3:[a]bad=2;"); /* reading stopped */
    /* the earliest line wins: a syntax error before the handler's failure */
    CU_ASSERT_EQUAL(parse_text(&c, "[a]\nnot a pair\nbad = 2\n"), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "t.ini:2: syntax error"));
    CU_ASSERT_EQUAL(parse_text(&c, "[a]\nbad = 2\nnot a pair\n"), DK_ERR_ARG);
    CU_ASSERT_STRING_EQUAL(dk_last_error(), "t.ini:2: bad key");
    char longline[400];
    snprintf(longline, sizeof longline, "[a]\nk = %0250d\nz = 1\n", 7);
    CU_ASSERT_EQUAL(parse_text(&c, longline), DK_ERR_ARG);
    CU_ASSERT_STRING_EQUAL(dk_last_error(), "t.ini:2: line longer than 197 characters");
    CU_ASSERT_STRING_EQUAL(c.log, "");
}

/* From a file: the same, and a longest line that ends the file without a newline is whole. */
static void test_ini_parse_file(void) {
    const char *p = dk_test_path(dk_test_tmpdir(), "probe.ini");
    char text[256];
    int k = snprintf(text, sizeof text, "[a]\nx = 1\nk = ");
    while (k < 4 + 6 + 199) text[k++] = 'v'; /* "k = vvv..." of 199 characters, no newline */
    text[k] = '\0';
    FILE *f = fopen(p, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    ini_probe c;
    memset(&c, 0, sizeof c);
    c.src.name = p;
    c.src.file = fopen(p, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.src.file);
    CU_ASSERT_EQUAL(dk_ini_parse(&c.src, probe_key, &c), DK_OK);
    fclose(c.src.file);
    CU_ASSERT_EQUAL(c.src.line, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.log, "2:[a]x=1;3:[a]k=vvvv"));
    /* the same line followed by another one does not fit */
    f = fopen(p, "a");
    fputs("\ny = 2\n", f);
    fclose(f);
    memset(&c, 0, sizeof c);
    c.src.name = p;
    c.src.file = fopen(p, "r");
    CU_ASSERT_EQUAL(dk_ini_parse(&c.src, probe_key, &c), DK_ERR_ARG);
    fclose(c.src.file);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), ":3: line longer than 197 characters"));
}

/* ------------------------------------------------------------------ main */

typedef struct {
    const char *name;
    CU_TestFunc fn;
} test_entry;

static int add_suite(const char *name, const test_entry *tests, size_t n) {
    CU_pSuite s = CU_add_suite(name, NULL, NULL);
    if (!s) return -1;
    for (size_t i = 0; i < n; i++)
        if (!CU_add_test(s, tests[i].name, tests[i].fn)) return -1;
    return 0;
}

#define ADD_SUITE(name, arr) add_suite(name, arr, sizeof arr / sizeof arr[0])

int main(void) {
    static const test_entry errors[] = {
        {"fail records message", test_fail_records_message},
        {"fail edge cases", test_fail_edge_cases},
        {"context goes in front", test_error_context},
        {"message is thread-local", test_error_thread_local},
        {"status names", test_status_names},
        {"DK_ASSERT aborts with file:line", test_assert_aborts},
        {"version string", test_version_string},
    };
    static const test_entry logging[] = {
        {"sink receives at/above level", test_log_levels},
        {"stderr sink format", test_log_stderr_sink},
        {"monotonic timer", test_timer},
    };
    static const test_entry progress[] = {
        {"format_duration", test_format_duration},
        {"events and nesting", test_progress_events},
        {"log lines framed by hide and show", test_progress_log_frames},
    };
    static const test_entry arena[] = {
        {"alignment", test_arena_alignment},
        {"exhaustion returns NULL", test_arena_exhaustion},
        {"mark, release, high water", test_arena_mark_release},
        {"dk_alloc_aligned", test_alloc_aligned},
        {"dk_alloc_large", test_alloc_large},
        {"tensor numel", test_tensor_numel},
        {"tensor alloc", test_tensor_alloc},
        {"tensor alloc bad dims", test_tensor_alloc_bad_dims},
        {"tensor view and arena", test_tensor_view_and_arena},
    };
    static const test_entry rng[] = {
        {"reference values", test_rng_reference_values},
        {"reproducible", test_rng_reproducible},
        {"uniform", test_rng_uniform},
        {"below", test_rng_below},
        {"normal", test_rng_normal},
        {"split", test_rng_split},
    };
    static const test_entry order[] = {
        {"sort and median", test_sort_median},
        {"selection", test_select},
        {"percentiles as numpy", test_percentile_numpy},
        {"percentile forms agree", test_percentile_forms_agree},
    };
    static const test_entry files[] = {
        {"text builder", test_sbuf},
        {"text written atomically", test_sbuf_write_file},
        {"remove a tree", test_remove_tree},
        {"remove a tree: failures", test_remove_tree_failure},
        {"INI lines from a text", test_ini_parse_text},
        {"INI lines from a file", test_ini_parse_file},
    };
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    if (ADD_SUITE("core.errors", errors) || ADD_SUITE("core.log_timer", logging) ||
        ADD_SUITE("core.progress", progress) || ADD_SUITE("core.memory", arena) ||
        ADD_SUITE("core.rng", rng) || ADD_SUITE("core.order", order) ||
        ADD_SUITE("core.files", files)) {
        CU_cleanup_registry();
        return 1;
    }
    return dk_test_run();
}
