/*
 * Helpers shared by the CUnit suites: run the registered suites, locate shared data and
 * the dakd binary, make scratch directories, report skips with their reason.
 */
#ifndef DK_TEST_UTIL_H
#define DK_TEST_UTIL_H

#include <CUnit/Basic.h>
#include <stdarg.h>
#include <stddef.h>

#include "dakd/core.h"

/* Run every registered suite in CUnit's verbose basic mode; returns the process exit
 * code: 1 any failure (or CUnit error), else 77 when any check called dk_test_skip (CTest's
 * SKIP_RETURN_CODE: the suite shows as Skipped, and .ci/run refuses it), else 0. A failure
 * wins over a skip: a suite with both exits 1. */
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

/* A check that could not run because its oracle is missing (PyTorch, scipy, plastimatch,
 * Chromium, nibabel/pydicom data, the shared data folder, a pseudo-terminal): prints
 * "SKIP <test>: <reason>" and makes dk_test_run exit 77. Not for conditions the test
 * handles itself (the CPU lacks a kernel, the user is root): those are dk_test_note. */
void dk_test_skip(const char *what, const char *reason);
/* Headless Chromium: dump the DOM of file://html (after its scripts ran) to `dom` and the
 * browser's log (console messages, uncaught exceptions) to `log`, with a profile of its own
 * under dir (so the user profile, the network and another build's run are not touched).
 * Returns the shell's exit status. */
int dk_test_chromium_dom(const char *dir, const char *html, const char *dom, const char *log);
/* An informative line "note <what>: <text>" (e.g. which kernels this CPU cannot run); it
 * changes no exit code. */
void dk_test_note(const char *what, const char *text);

/* Run a shell command, return its exit status (or -1); stdout+stderr captured in `out`
 * (NUL-terminated, truncated to n-1) when out != NULL. */
int dk_test_sh(char *out, size_t n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Run the dakd CLI with the arguments made by vprintf(fmt, ap): its exit status, the
 * output captured as dk_test_sh captures it. */
int dk_test_vcli(char *out, size_t n, const char *fmt, va_list ap);

/* 1 if the file exists. */
int dk_test_exists(const char *path);
/* The whole file as a NUL-terminated text the caller frees (empty when a read falls
 * short), or NULL when it cannot be opened. */
char *dk_test_slurp(const char *path);

/* Run fn(arg) in a forked child whose address space may grow by at most `extra` bytes
 * (RLIMIT_AS), so that a reader which allocates what a hostile header claims fails with
 * DK_ERR_NOMEM instead of passing. Under AddressSanitizer (whose shadow memory needs
 * terabytes of address space) the child runs without the limit. Returns fn's dk_status
 * with its message copied into msg (n bytes), or -1 when the child could not run or died. */
int dk_test_run_bounded(char *msg, size_t n, size_t extra, dk_status (*fn)(void *), void *arg);

#endif
