/*
 * Progress reporting for long loops (epochs, cases, sliding windows). On a terminal one
 * line is redrawn in place; in a log file (batch jobs, CI) a plain line is written at most
 * every `interval` seconds so logs stay readable and small.
 */
#include "dakd/core.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { BAR_WIDTH = 30, LINE_CAP = 512 };

/* Terminal redraws are throttled too: thousands of steps a second would otherwise spend
 * more time writing escape codes than working. */
static const double TTY_REDRAW_S = 0.1;

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

static double rate_of(const dk_progress *p, double now) {
    double el = now - p->t_start;
    return el > 0.0 ? (double)p->done / el : 0.0;
}

/* ETA in seconds, or a negative value when it cannot be estimated (unknown total, no
 * progress yet). */
static double eta_of(const dk_progress *p, double rate) {
    if (p->total <= 0 || rate <= 0.0) return -1.0;
    int64_t left = p->total - p->done;
    return left > 0 ? (double)left / rate : 0.0;
}

static const char *label_of(const dk_progress *p) { return p->label ? p->label : ""; }

/* "label [#####.....]  42/100  12.3 it/s  ETA 0:04" (no bar or ETA for unknown totals); the
 * final redraw shows the elapsed time instead of the ETA. */
static void tty_line(char *line, size_t n, const dk_progress *p, double now, int final) {
    double rate = rate_of(p, now);
    if (p->total > 0) {
        int64_t done = p->done < p->total ? p->done : p->total;
        int fill = (int)((double)done / (double)p->total * BAR_WIDTH);
        char bar[BAR_WIDTH + 1];
        for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
        bar[BAR_WIDTH] = '\0';
        char when[32];
        dk_format_duration(when, sizeof when, final ? now - p->t_start : eta_of(p, rate));
        snprintf(line, n, "%s [%s]  %lld/%lld  %.1f it/s  %s %s", label_of(p), bar,
                 (long long)p->done, (long long)p->total, rate, final ? "in" : "ETA", when);
    } else {
        snprintf(line, n, "%s  %lld  %.1f it/s", label_of(p), (long long)p->done, rate);
    }
}

/* "label: 42/100 (42%)  12.3 it/s  elapsed 0:03  ETA 0:04"; the final line drops the ETA. */
static void plain_line(char *line, size_t n, const dk_progress *p, double now, int final) {
    double rate = rate_of(p, now);
    char el[32], eta[32];
    dk_format_duration(el, sizeof el, now - p->t_start);
    dk_format_duration(eta, sizeof eta, eta_of(p, rate));
    if (p->total > 0) {
        double pct = 100.0 * (double)p->done / (double)p->total;
        int k = snprintf(line, n, "%s: %lld/%lld (%.0f%%)  %.1f it/s  elapsed %s", label_of(p),
                         (long long)p->done, (long long)p->total, pct, rate, el);
        if (!final && k > 0 && (size_t)k < n) snprintf(line + k, n - (size_t)k, "  ETA %s", eta);
    } else {
        snprintf(line, n, "%s: %lld  %.1f it/s  elapsed %s", label_of(p), (long long)p->done, rate,
                 el);
    }
}

static void draw(dk_progress *p, double now, int final) {
    char line[LINE_CAP];
    if (p->is_tty) {
        tty_line(line, sizeof line, p, now, final);
        /* \r returns to column 0; ESC[K clears what a longer previous line left behind. */
        fprintf(p->out, "\r%s\x1b[K%s", line, final ? "\n" : "");
    } else {
        plain_line(line, sizeof line, p, now, final);
        fprintf(p->out, "%s\n", line);
    }
    fflush(p->out);
    p->t_last_print = now;
}

void dk_progress_begin(dk_progress *p, FILE *out, const char *label, int64_t total) {
    DK_ASSERT(p != NULL);
    memset(p, 0, sizeof *p);
    p->out = out;
    p->label = label;
    p->total = total;
    p->interval = 5.0;
    p->t_start = dk_time_now();
    p->t_last_print = p->t_start;
    if (out) {
        int fd = fileno(out);
        p->is_tty = fd >= 0 && isatty(fd);
    }
    if (p->out && p->is_tty) draw(p, p->t_start, 0);
}

void dk_progress_step(dk_progress *p, int64_t n) {
    DK_ASSERT(p != NULL);
    p->done += n;
    if (!p->out) return;
    double now = dk_time_now();
    double wait = p->is_tty ? TTY_REDRAW_S : p->interval;
    if (now - p->t_last_print >= wait) draw(p, now, 0);
}

void dk_progress_end(dk_progress *p) {
    DK_ASSERT(p != NULL);
    if (!p->out) return;
    draw(p, dk_time_now(), 1);
}
