/*
 * Progress reports of long loops: the chain of open reporters and the sink they are handed
 * to. Drawing is the application's (dakd's command line: apps/term.c); this file only keeps
 * count and passes events on, so the library never writes to a terminal itself.
 */
#include "dakd/core.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static dk_progress_fn sink_fn; /* NULL = none, the library default */
static void *sink_user;
static dk_progress *innermost; /* the chain's end; parent pointers lead outwards */
static int hidden;             /* dk_progress_hide depth: HIDE on 0 -> 1, SHOW on 1 -> 0 */

void dk_format_duration(char *buf, size_t n, double s) {
    if (!buf || n == 0) return;
    /* Negative, NaN or absurd (> ~30 years) values come from a rate of zero or a clock
     * glitch; show "unknown" instead of garbage digits. */
    if (!(s >= 0.0) || s > 1e9) {
        snprintf(buf, n, "?:??");
        return;
    }
    long long t = (long long)llround(s);
    long long h = t / 3600, m = (t / 60) % 60, sec = t % 60;
    if (h > 0)
        snprintf(buf, n, "%lld:%02lld:%02lld", h, m, sec);
    else
        snprintf(buf, n, "%lld:%02lld", m, sec);
}

void dk_progress_set_sink(dk_progress_fn fn, void *user) {
    sink_fn = fn;
    sink_user = user;
}

static void emit(dk_progress_event ev, const dk_progress *p) {
    if (sink_fn) sink_fn(ev, p, sink_user);
}

void dk_progress_begin(dk_progress *p, const char *label, int64_t total) {
    DK_ASSERT(p != NULL);
    memset(p, 0, sizeof *p);
    p->label = label ? label : "";
    p->total = total > 0 ? total : 0;
    p->t_start = dk_time_now();
    p->parent = innermost;
    innermost = p;
    emit(DK_PROGRESS_BEGIN, p);
}

void dk_progress_step(dk_progress *p, int64_t n) {
    DK_ASSERT(p != NULL);
    p->done += n;
    emit(DK_PROGRESS_STEP, p);
}

void dk_progress_item(dk_progress *p, const char *fmt, ...) {
    DK_ASSERT(p != NULL && fmt != NULL);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->item, sizeof p->item, fmt, ap);
    va_end(ap);
    emit(DK_PROGRESS_ITEM, p);
}

void dk_progress_end(dk_progress *p) {
    DK_ASSERT(p != NULL && p == innermost); /* closed in the order opened */
    emit(DK_PROGRESS_END, p);
    innermost = p->parent;
}

const dk_progress *dk_progress_current(void) { return innermost; }

void dk_progress_hide(void) {
    if (hidden++ == 0 && innermost) emit(DK_PROGRESS_HIDE, innermost);
}

void dk_progress_show(void) {
    if (hidden > 0 && --hidden == 0 && innermost) emit(DK_PROGRESS_SHOW, innermost);
}
