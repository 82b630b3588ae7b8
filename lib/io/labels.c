/*
 * Label names and colours from a 3D Slicer colour table (format in dakd/volume.h): read,
 * checked line by line, looked up with a fixed default for the values a file leaves out.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dakd/volume.h"

enum { LINE_MAX_ = 1024, TOKENS_MAX = 8 };

/* The colours of unnamed labels 1, 2, ... (cycled): distinct hues that stay apart on a grey
 * image, value 0 black. */
static const unsigned char palette[12][3] = {{31, 119, 180},  {255, 127, 14},  {44, 160, 44},
                                             {214, 39, 40},   {148, 103, 189}, {140, 86, 75},
                                             {227, 119, 194}, {188, 189, 34},  {23, 190, 207},
                                             {174, 199, 232}, {255, 187, 120}, {152, 223, 138}};

dk_label_info dk_labels_get(const dk_label_table *t, int value) {
    for (int i = 0; t && i < t->n; i++)
        if (t->items[i].value == value) return t->items[i];
    dk_label_info d;
    memset(&d, 0, sizeof d);
    d.value = value;
    snprintf(d.name, sizeof d.name, "label %d", value);
    if (value > 0) memcpy(d.rgb, palette[(value - 1) % 12], 3);
    return d;
}

/* A whole token as an integer in [lo, hi]; 0 on success. */
static int int_token(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* One non-comment line (tokens tok[0..n-1]) into *e, checked against the table so far. */
static dk_status parse_line(dk_label_info *e, char **tok, int n, const dk_label_table *t,
                            int max_value, const char *path, int line) {
    long v, c[4];
    if (n != 5 && n != 6)
        return dk_fail(DK_ERR_FORMAT,
                       "%s:%d: %d fields; a label line is \"value name R G B "
                       "A\" (one-word name, A optional)",
                       path, line, n);
    if (int_token(tok[0], 0, 65535, &v))
        return dk_fail(DK_ERR_FORMAT, "%s:%d: value '%s' is not an integer 0..65535", path, line,
                       tok[0]);
    if (v > max_value)
        return dk_fail(DK_ERR_FORMAT,
                       "%s:%d: value %ld is outside the labels 0..%d (the "
                       "classes of the model or data)",
                       path, line, v, max_value);
    for (int k = 2; k < n; k++)
        if (int_token(tok[k], 0, 255, &c[k - 2]))
            return dk_fail(DK_ERR_FORMAT, "%s:%d: %s '%s' is not an integer 0..255", path, line,
                           (const char *[]){"R", "G", "B", "A"}[k - 2], tok[k]);
    if (strlen(tok[1]) >= sizeof e->name)
        return dk_fail(DK_ERR_FORMAT, "%s:%d: name '%.20s...' is longer than %zu bytes", path, line,
                       tok[1], sizeof e->name - 1);
    for (int i = 0; i < t->n; i++)
        if (t->items[i].value == v)
            return dk_fail(DK_ERR_FORMAT,
                           "%s:%d: value %ld is listed twice ('%s' before, "
                           "'%s' here)",
                           path, line, v, t->items[i].name, tok[1]);
    e->value = (int)v;
    snprintf(e->name, sizeof e->name, "%s", tok[1]);
    for (int k = 0; k < 3; k++)
        e->rgb[k] = (unsigned char)c[k];
    return DK_OK;
}

dk_status dk_labels_read(dk_label_table *t, const char *path, int max_value) {
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "r");
    if (!f) return dk_fail(DK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char buf[LINE_MAX_];
    dk_status st = DK_OK;
    int cap = 0;
    for (int line = 1; st == DK_OK && fgets(buf, sizeof buf, f); line++) {
        if (!strchr(buf, '\n') && !feof(f)) {
            st = dk_fail(DK_ERR_FORMAT, "%s:%d: line longer than %d bytes", path, line,
                         LINE_MAX_ - 2);
            break;
        }
        char *tok[TOKENS_MAX], *save = NULL;
        int n = 0;
        for (char *p = strtok_r(buf, " \t\r\n", &save); p; p = strtok_r(NULL, " \t\r\n", &save))
            if (n < TOKENS_MAX)
                tok[n++] = p;
            else
                n++;
        if (n == 0 || tok[0][0] == '#') continue;
        if (t->n == cap) {
            cap = cap ? 2 * cap : 16;
            dk_label_info *g = realloc(t->items, (size_t)cap * sizeof *g);
            if (!g) {
                st = dk_fail(DK_ERR_NOMEM, "%s: no memory for %d labels", path, cap);
                break;
            }
            t->items = g;
        }
        st = parse_line(&t->items[t->n], tok, n, t, max_value, path, line);
        if (st == DK_OK) t->n++;
    }
    if (st == DK_OK && ferror(f)) st = dk_fail(DK_ERR_IO, "%s: read error", path);
    fclose(f);
    if (st != DK_OK) dk_labels_free(t);
    return st;
}

void dk_labels_free(dk_label_table *t) {
    if (!t) return;
    free(t->items);
    memset(t, 0, sizeof *t);
}
