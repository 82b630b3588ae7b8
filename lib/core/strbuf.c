/*
 * A growable NUL-terminated text (dakd/core.h): appends, printf, HTML escaping, numbers that
 * read back, base64, and writing it to a file atomically. Reports and study tables are
 * assembled here and written once.
 */
#include "dakd/core.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dk_sb_free(dk_sbuf *b) {
    if (!b) return;
    free(b->s);
    memset(b, 0, sizeof *b);
}

static int reserve(dk_sbuf *b, size_t extra) {
    if (b->oom) return 0;
    if (b->len + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) return b->oom = 1, 0;
        cap *= 2;
    }
    char *s = realloc(b->s, cap);
    if (!s) return b->oom = 1, 0;
    b->s = s;
    b->cap = cap;
    return 1;
}

void dk_sb_putn(dk_sbuf *b, const char *s, size_t n) {
    if (!reserve(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void dk_sb_puts(dk_sbuf *b, const char *s) { dk_sb_putn(b, s, strlen(s)); }

void dk_sb_printf(dk_sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void dk_sb_html(dk_sbuf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': dk_sb_puts(b, "&amp;"); break;
        case '<': dk_sb_puts(b, "&lt;"); break;
        case '>': dk_sb_puts(b, "&gt;"); break;
        case '"': dk_sb_puts(b, "&quot;"); break;
        case '\'': dk_sb_puts(b, "&#39;"); break;
        default: dk_sb_putn(b, s, 1);
        }
    }
}

void dk_sb_num(dk_sbuf *b, double x) {
    if (isnan(x)) dk_sb_puts(b, "nan");
    else if (isinf(x)) dk_sb_puts(b, x > 0 ? "inf" : "-inf");
    else dk_sb_printf(b, "%.17g", x);
}

void dk_sb_base64(dk_sbuf *b, const unsigned char *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (!reserve(b, (n + 2) / 3 * 4)) return;
    char *o = b->s + b->len;
    size_t i = 0;
    for (; i + 2 < n; i += 3) { /* 3 bytes → 4 sextets */
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18], *o++ = tab[(v >> 12) & 63], *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) { /* 1 or 2 bytes left: pad with '=' */
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = tab[v >> 18], *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->s);
    b->s[b->len] = '\0';
}

dk_status dk_sb_write_file(const dk_sbuf *b, const char *path) {
    if (b->oom) return dk_fail(DK_ERR_NOMEM, "%s: report text too large for memory", path);
    char tmp[4096];
    dk_status st = dk_tmp_path_for(tmp, sizeof tmp, path);
    if (st != DK_OK) return st;
    FILE *f = fopen(tmp, "wb");
    if (!f) return dk_fail(DK_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    size_t n = b->len ? fwrite(b->s, 1, b->len, f) : 0;
    int bad = n != b->len, e = errno;
    if (fclose(f) != 0 && !bad) bad = 1, e = errno;
    if (bad) {
        remove(tmp);
        return dk_fail(DK_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    return dk_commit_file(tmp, path);
}
