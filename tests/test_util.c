#include "test_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Checks skipped in this process (dk_test_skip). */
static int n_skipped;

int dk_test_run(void) {
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (CU_basic_run_tests() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit error: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned suites_failed = CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    if (failed || suites_failed) return 1;
    if (n_skipped) {
        printf("\n%d check(s) skipped (SKIP lines above): exit 77, the suite is not a pass\n",
               n_skipped);
        return 77;
    }
    return 0;
}

const char *dk_test_shared_data(void) {
    const char *p = getenv("DAKD_SHARED_DATA");
    if (!p || !*p) p = DK_SHARED_DATA_DEFAULT;
    struct stat st;
    return (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) ? p : NULL;
}

const char *dk_test_cli(void) {
    const char *p = getenv("DAKD_CLI");
    return (p && *p) ? p : DK_BINARY_DIR "/dakd";
}

const char *dk_test_source_dir(void) { return DK_SOURCE_DIR; }

const char *dk_test_tmpdir(void) {
    static char dir[4096];
    if (dir[0]) return dir;
    char base[4000];
    snprintf(base, sizeof base, "%s/test-scratch", DK_BINARY_DIR);
    mkdir(base, 0755);
    snprintf(dir, sizeof dir, "%s/run-%ld", base, (long)getpid());
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot make %s: %s\n", dir, strerror(errno));
        abort();
    }
    return dir;
}

const char *dk_test_path(const char *dir, const char *name) {
    static char bufs[8][4096];
    static int slot;
    char *b = bufs[slot++ & 7];
    snprintf(b, 4096, "%s/%s", dir, name);
    return b;
}

int dk_test_chromium_dom(const char *dir, const char *html, const char *dom, const char *log) {
    return dk_test_sh(NULL, 0, "timeout 120 chromium --headless=new --no-sandbox --disable-gpu "
                      "--no-first-run --disable-extensions --user-data-dir=%s "
                      "--enable-logging=stderr --v=0 --dump-dom file://%s > %s 2> %s",
                      dk_test_path(dir, "chromium-profile"), html, dom, log);
}

void dk_test_skip(const char *what, const char *reason) {
    n_skipped++;
    printf("\n    SKIP %s: %s\n", what, reason);
    fflush(stdout);
}

void dk_test_note(const char *what, const char *text) {
    printf("\n    note %s: %s\n", what, text);
    fflush(stdout);
}

int dk_test_sh(char *out, size_t n, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[8300];
    snprintf(full, sizeof full, "( %s ) 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t len = 0;
    char tmp[4096];
    size_t got;
    while ((got = fread(tmp, 1, sizeof tmp, p)) > 0) {
        if (out && len + 1 < n) {
            size_t k = got < n - 1 - len ? got : n - 1 - len;
            memcpy(out + len, tmp, k);
            len += k;
        }
    }
    if (out && n) out[len] = '\0';
    int st = pclose(p);
    if (st == -1) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int dk_test_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int dk_test_vcli(char *out, size_t n, const char *fmt, va_list ap) {
    char args[16384];
    vsnprintf(args, sizeof args, fmt, ap);
    return dk_test_sh(out, n, "%s %s", dk_test_cli(), args);
}

char *dk_test_slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

/* ---------------------------------------------------------------- bounded memory */

/* Let the address space grow by `extra` bytes from its size now (VmSize); 0, or -1 when
 * the size is unknown or the limit cannot be set. Under AddressSanitizer nothing is set:
 * its shadow memory needs terabytes of address space. */
static int limit_growth(size_t extra) {
#ifdef __SANITIZE_ADDRESS__
    (void)extra;
    return 0;
#else
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1) break;
    if (f) fclose(f);
    struct rlimit lim = {kb * 1024 + extra, kb * 1024 + extra};
    return kb > 0 && setrlimit(RLIMIT_AS, &lim) == 0 ? 0 : -1;
#endif
}

int dk_test_run_bounded(char *msg, size_t n, size_t extra, dk_status (*fn)(void *), void *arg) {
    int fd[2];
    if (pipe(fd) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(fd[0]);
        if (limit_growth(extra) != 0) _exit(125);
        dk_clear_error();
        dk_status st = fn(arg);
        const char *e = dk_last_error();
        ssize_t w = write(fd[1], e, strlen(e));
        (void)w;
        _exit((int)st);
    }
    close(fd[1]);
    size_t len = 0;
    ssize_t got;
    char buf[1024];
    while ((got = read(fd[0], buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < got && msg && len + 1 < n; i++)
            msg[len++] = buf[i];
    if (msg && n) msg[len] = '\0';
    close(fd[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) == 125)
        return -1;
    return WEXITSTATUS(status);
}
