/*
 * Status codes, the per-thread failure message and assertions.
 */
#include "dakd/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One message per thread: concurrent workers (OpenMP, MPI helpers, test threads) each
 * see the failure they detected, never a neighbour's. */
enum { MSG_CAP = 1024 };
static _Thread_local char last_msg[MSG_CAP];

dk_status dk_fail(dk_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    /* Format into a scratch buffer first so `fmt` arguments may point at last_msg. */
    char tmp[MSG_CAP];
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0)
        snprintf(last_msg, sizeof last_msg, "%s (message could not be formatted)",
                 dk_status_name(st));
    else
        snprintf(last_msg, sizeof last_msg, "%s", tmp);
    /* A caller passing DK_OK by mistake must still see a failure propagate. */
    return st == DK_OK ? DK_ERR_INTERNAL : st;
}

dk_status dk_error_context(dk_status st, const char *fmt, ...) {
    char tmp[MSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) snprintf(tmp, sizeof tmp, "%s", dk_status_name(st));
    /* The context first, then as much of the detector's message as still fits. */
    size_t used = strlen(tmp), len = strlen(last_msg);
    if (len && used + 2 < sizeof tmp) {
        memcpy(tmp + used, ": ", 2);
        used += 2;
        if (len > sizeof tmp - 1 - used) len = sizeof tmp - 1 - used;
        memcpy(tmp + used, last_msg, len);
        tmp[used + len] = '\0';
    }
    memcpy(last_msg, tmp, sizeof last_msg);
    return st == DK_OK ? DK_ERR_INTERNAL : st;
}

const char *dk_last_error(void) { return last_msg; }

void dk_clear_error(void) { last_msg[0] = '\0'; }

const char *dk_status_name(dk_status st) {
    switch (st) {
    case DK_OK: return "ok";
    case DK_ERR_ARG: return "invalid argument";
    case DK_ERR_IO: return "I/O error";
    case DK_ERR_FORMAT: return "format error";
    case DK_ERR_UNSUPPORTED: return "unsupported";
    case DK_ERR_NOMEM: return "out of memory";
    case DK_ERR_NUMERIC: return "numeric error";
    case DK_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

void dk_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}
