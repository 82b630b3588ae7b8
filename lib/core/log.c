/*
 * Logging through one process-wide sink. The library never writes to a stream itself;
 * an application installs dk_log_stderr_sink (or its own) at start-up. Each message is
 * framed by dk_progress_hide / dk_progress_show, so a progress sink can keep its bar off the
 * log's lines.
 */
#include "dakd/core.h"

#include <stdarg.h>
#include <stdio.h>

static dk_log_fn sink_fn; /* NULL = discard, the library default */
static void *sink_user;
static dk_log_level sink_min = DK_LOG_INFO;

void dk_log_set_sink(dk_log_fn fn, void *user, dk_log_level min_level) {
    sink_fn = fn;
    sink_user = user;
    sink_min = min_level;
}

static const char *level_name(dk_log_level level) {
    switch (level) {
    case DK_LOG_DEBUG: return "debug";
    case DK_LOG_INFO: return "info";
    case DK_LOG_WARN: return "warn";
    case DK_LOG_ERROR: return "error";
    }
    return "?";
}

void dk_log_stderr_sink(dk_log_level level, const char *msg, void *user) {
    FILE *f = user ? (FILE *)user : stderr;
    fprintf(f, "[%s] %s\n", level_name(level), msg);
    fflush(f);
}

void dk_log(dk_log_level level, const char *fmt, ...) {
    /* Check before formatting so disabled debug logging in hot loops costs one branch. */
    if (!sink_fn || level < sink_min) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    /* a progress bar on the same terminal is cleared first and drawn again after */
    dk_progress_hide();
    sink_fn(level, buf, sink_user);
    dk_progress_show();
}
