/*
 * What dakd draws on stderr while a long command runs: the library's progress reporters
 * (dakd/core.h) as one bar line redrawn in place on a terminal, or as plain lines now and
 * then in a log file. The chain of open reporters is one line, outermost first:
 *   run stage 3/7 teacher > train epoch 2/5 [#####.....]  40/120  3.1 it/s  ETA 0:25
 *   predict case_004 > windows: 12/40 (30%)  5.0 it/s  elapsed 0:02  ETA 0:05
 * A terminal gets no line wider than itself (a wrapped line cannot be redrawn with \r), and
 * every log line clears the bar first (dk_log sends HIDE before and SHOW after). A log file
 * never gets a \r: a plain line every `interval` seconds, one at each milestone (the next
 * stage, epoch or case) and one when the outermost reporter ends.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"

enum { LINE_CAP = 1024, BAR_WIDTH = 24 };

static struct {
    double interval;  /* seconds between plain lines */
    double last_draw; /* when the bar or a plain line was last written */
    int shown;        /* a bar is on the terminal's current line */
} term = {30.0, 0.0, 0};

/* Terminal redraws are throttled: thousands of steps a second would otherwise spend more
 * time writing escape codes than working. */
static const double TTY_REDRAW_S = 0.1;

/* Asked at every event: a forked child of 'dakd run' writes the same stream into its log. */
static int on_tty(void) { return isatty(STDERR_FILENO); }

static int columns(void) {
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10) return ws.ws_col;
    return 80;
}

static size_t put(char *line, size_t at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static size_t put(char *line, size_t at, const char *fmt, ...) {
    if (at >= LINE_CAP - 1) return at;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + at, LINE_CAP - at, fmt, ap);
    va_end(ap);
    return k < 0 ? at : at + (size_t)k < LINE_CAP ? at + (size_t)k : LINE_CAP - 1;
}

/* "label item" of one reporter, then the parent's in front (recursion outwards). */
static size_t names(char *line, size_t at, const dk_progress *p, const char *sep) {
    if (p->parent) at = names(line, at, p->parent, " > ");
    at = put(line, at, "%s%s%s", p->label, p->item[0] ? " " : "", p->item);
    return put(line, at, "%s", sep);
}

/* A rate as "12.3 it/s", or "4.2 s/it" when one unit takes longer than a second. */
static size_t rate_text(char *line, size_t at, double rate) {
    if (rate >= 1.0 || rate <= 0.0) return put(line, at, "%.1f it/s", rate);
    return put(line, at, "%.1f s/it", 1.0 / rate);
}

/* The innermost reporter's numbers: on a terminal a bar and the ETA, in a log the percentage
 * and the elapsed time; the final line (the outermost's end) gives the time taken. */
static size_t numbers(char *line, size_t at, const dk_progress *p, double now, int tty,
                      int final, int width) {
    double el = now - p->t_start, rate = el > 0.0 ? (double)p->done / el : 0.0;
    char when[32], eta[32];
    dk_format_duration(when, sizeof when, el);
    dk_format_duration(eta, sizeof eta,
                       p->total > 0 && rate > 0.0 ? (double)(p->total - p->done) / rate : -1);
    if (tty && p->total > 0) {
        int64_t done = p->done < p->total ? p->done : p->total;
        char bar[BAR_WIDTH + 1];
        for (int i = 0; i < width; i++)
            bar[i] = i < (int)((double)done / (double)p->total * width) ? '#' : '.';
        bar[width] = '\0';
        at = put(line, at, "[%s]  %lld/%lld  ", bar, (long long)p->done, (long long)p->total);
    } else if (p->total > 0) {
        at = put(line, at, "%lld/%lld (%.0f%%)  ", (long long)p->done, (long long)p->total,
                 100.0 * (double)p->done / (double)p->total);
    } else {
        at = put(line, at, "%lld  ", (long long)p->done);
    }
    at = rate_text(line, at, rate);
    if (final || !tty) at = put(line, at, "  %s %s", final ? "in" : "elapsed", when);
    if (!final && p->total > 0) at = put(line, at, "  ETA %s", eta);
    return at;
}

/* The terminal's line: the names, cut at the right (never inside a UTF-8 sequence) so that
 * the numbers always show, and a bar narrowed first. */
static void tty_line(char *line, const dk_progress *p, double now, int final) {
    char nums[LINE_CAP];
    size_t cols = (size_t)columns() - 1, nn = names(line, 0, p, " ");
    size_t nm = numbers(nums, 0, p, now, 1, final, BAR_WIDTH);
    if (nn + nm > cols) {
        int width = BAR_WIDTH - (int)(nn + nm - cols);
        nm = numbers(nums, 0, p, now, 1, final, width > 8 ? width : 8);
    }
    if (nn + nm > cols) {
        nn = nm + 2 < cols ? cols - nm - 2 : 0;
        while (nn > 0 && ((unsigned char)line[nn] & 0xC0) == 0x80) nn--;
        nn = put(line, nn, "~ ");
    }
    snprintf(line + nn, LINE_CAP - nn, "%.*s", (int)(cols > nn ? cols - nn : 0), nums);
}

static void draw(const dk_progress *p, double now, int final) {
    char line[LINE_CAP];
    int tty = on_tty();
    if (tty) {
        tty_line(line, p, now, final);
        /* \r returns to column 0; ESC[K clears what a longer previous line left behind */
        fprintf(stderr, "\r%s\x1b[K%s", line, final ? "\n" : "");
        term.shown = !final;
    } else {
        numbers(line, names(line, 0, p, ": "), p, now, 0, final, BAR_WIDTH);
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
    term.last_draw = now;
}

static void clear_bar(void) {
    if (!term.shown) return;
    if (on_tty()) fputs("\r\x1b[K", stderr), fflush(stderr);
    term.shown = 0;
}

static void on_progress(dk_progress_event ev, const dk_progress *p, void *user) {
    (void)user;
    double now = dk_time_now(), since = now - term.last_draw;
    int tty = on_tty();
    switch (ev) {
    case DK_PROGRESS_BEGIN:
        if (tty) draw(p, now, 0);
        break;
    case DK_PROGRESS_STEP:
        if (since >= (tty ? TTY_REDRAW_S : term.interval)) draw(p, now, 0);
        break;
    case DK_PROGRESS_ITEM: /* a milestone: in a log, once something is done */
        if (tty || p->done > 0 || since >= term.interval) draw(p, now, 0);
        break;
    case DK_PROGRESS_END:
        if (!p->parent) draw(p, now, 1);
        else if (tty) draw(p->parent, now, 0); /* the chain without it */
        break;
    case DK_PROGRESS_HIDE: clear_bar(); break;
    case DK_PROGRESS_SHOW:
        if (tty) draw(p, now, 0);
        break;
    }
}

void dk_cli_term_install(int quiet, double interval) {
    dk_log_set_sink(dk_log_stderr_sink, NULL, quiet ? DK_LOG_WARN : DK_LOG_INFO);
    term.interval = interval;
    term.last_draw = dk_time_now();
    dk_progress_set_sink(quiet ? NULL : on_progress, NULL);
}
