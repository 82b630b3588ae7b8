/*
 * Helpers shared by the CUnit suites: run the registered suites, locate shared data and
 * the dakd binary, make scratch directories, report skips with their reason.
 */
#ifndef DK_TEST_UTIL_H
#define DK_TEST_UTIL_H

#include <CUnit/Basic.h>
#include <stddef.h>

/* Run every registered suite in CUnit's verbose basic mode; returns the process exit
 * code: 0 all passed, 1 any failure (or CUnit error). */
int dk_test_run(void);

/* Path of ../shared/data (env DAKD_SHARED_DATA overrides); NULL if the folder is absent. */
const char *dk_test_shared_data(void);
/* Path of the dakd CLI built with the tests (env DAKD_CLI). */
const char *dk_test_cli(void);
/* The project's source directory (for fixtures and scripts). */
const char *dk_test_source_dir(void);
/* A fresh scratch directory under the build tree, made once per process. */
const char *dk_test_tmpdir(void);
/* Join `dir` and `name` into a static rotating buffer (8 slots). */
const char *dk_test_path(const char *dir, const char *name);

/* Print "SKIP <test>: <reason>" so a skipped check is visible in the log. */
void dk_test_skip(const char *what, const char *reason);

/* Run a shell command, return its exit status (or -1); stdout+stderr captured in `out`
 * (NUL-terminated, truncated to n-1) when out != NULL. */
int dk_test_sh(char *out, size_t n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* 1 if the file exists. */
int dk_test_exists(const char *path);

#endif
