/* Case lists from CSV (RFC 4180 fields, header row of column names), checked up front:
 * required columns, empty image paths, files that do not exist, duplicate ids, spacings
 * that are not three positive numbers. */
#include "dakd/data.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ the CSV reader */

typedef struct {
    const char *path; /* for messages */
    const char *buf;
    size_t len, pos;
    int line; /* line of buf[pos], 1-based */
} csv;

typedef struct {
    char **v;
    int n, cap;
} strvec;

typedef struct {
    char *s;
    size_t n, cap;
} strbuf;

static int strbuf_put(strbuf *b, char c) {
    if (b->n + 1 >= b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        char *s = realloc(b->s, cap);
        if (!s) return 0;
        b->s = s, b->cap = cap;
    }
    b->s[b->n++] = c;
    b->s[b->n] = '\0';
    return 1;
}

static void strvec_clear(strvec *r) {
    for (int i = 0; i < r->n; i++) free(r->v[i]);
    r->n = 0;
}

static void strvec_free(strvec *r) {
    strvec_clear(r);
    free(r->v);
    memset(r, 0, sizeof *r);
}

static int strvec_push(strvec *r, char *s) {
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 16;
        char **v = realloc(r->v, (size_t)cap * sizeof *v);
        if (!v) return 0;
        r->v = v, r->cap = cap;
    }
    r->v[r->n++] = s;
    return 1;
}

static int at_eol(const csv *p) {
    return p->pos >= p->len || p->buf[p->pos] == '\n' || p->buf[p->pos] == '\r';
}

static void skip_eol(csv *p) {
    if (p->pos < p->len && p->buf[p->pos] == '\r') p->pos++;
    if (p->pos < p->len && p->buf[p->pos] == '\n') p->pos++;
    p->line++;
}

/* One field at p->pos into b (NUL-terminated, possibly empty). `rec_line` and `col` name
 * the place in messages. */
static dk_status parse_field(csv *p, strbuf *b, int rec_line, int col) {
    if (!strbuf_put(b, '\0')) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", p->path);
    b->n = 0;
    if (p->pos < p->len && p->buf[p->pos] == '"') {
        int open_line = p->line;
        for (p->pos++;; p->pos++) {
            if (p->pos >= p->len)
                return dk_fail(DK_ERR_FORMAT, "%s:%d: column %d: quote opened here is never closed",
                               p->path, open_line, col);
            char c = p->buf[p->pos];
            if (c == '"') {
                if (p->pos + 1 < p->len && p->buf[p->pos + 1] == '"') p->pos++;
                else break;
            }
            if (c == '\n') p->line++;
            if (!strbuf_put(b, c)) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", p->path);
        }
        p->pos++; /* the closing quote */
        if (!at_eol(p) && p->buf[p->pos] != ',')
            return dk_fail(DK_ERR_FORMAT, "%s:%d: column %d: text after the closing quote",
                           p->path, p->line, col);
        return DK_OK;
    }
    for (; !at_eol(p) && p->buf[p->pos] != ','; p->pos++) {
        if (p->buf[p->pos] == '"')
            return dk_fail(DK_ERR_FORMAT,
                           "%s:%d: column %d: quote inside an unquoted field (quote the whole "
                           "field and double the quote)", p->path, rec_line, col);
        if (!strbuf_put(b, p->buf[p->pos]))
            return dk_fail(DK_ERR_NOMEM, "%s: out of memory", p->path);
    }
    return DK_OK;
}

/* The next non-blank record into `row` (cleared first); *line = its first line. Returns
 * DK_OK with row->n == 0 at the end of the file. */
static dk_status parse_record(csv *p, strvec *row, int *line) {
    strvec_clear(row);
    while (p->pos < p->len && (p->buf[p->pos] == '\n' || p->buf[p->pos] == '\r')) skip_eol(p);
    *line = p->line;
    if (p->pos >= p->len) return DK_OK;
    strbuf b = {0};
    dk_status st = DK_OK;
    for (int col = 1;; col++) {
        st = parse_field(p, &b, *line, col);
        if (st != DK_OK) break;
        char *field = b.s ? b.s : calloc(1, 1);
        b = (strbuf){0};
        if (!field || !strvec_push(row, field)) {
            free(field);
            st = dk_fail(DK_ERR_NOMEM, "%s: out of memory", p->path);
            break;
        }
        if (p->pos < p->len && p->buf[p->pos] == ',') {
            p->pos++;
            continue;
        }
        skip_eol(p);
        break;
    }
    free(b.s);
    return st;
}

static dk_status slurp(char **buf, size_t *len, const char *path) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return dk_fail(DK_ERR_IO, "%s: cannot open the case list: %s", path, strerror(errno));
    dk_status st = DK_OK;
    size_t cap = 0;
    for (;;) {
        if (*len + 4096 > cap) {
            cap = cap ? 2 * cap : 65536;
            char *b = realloc(*buf, cap);
            if (!b) {
                st = dk_fail(DK_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            *buf = b;
        }
        size_t got = fread(*buf + *len, 1, cap - *len, f);
        *len += got;
        if (got == 0) break;
    }
    if (st == DK_OK && ferror(f))
        st = dk_fail(DK_ERR_IO, "%s: cannot read the case list: %s", path, strerror(errno));
    fclose(f);
    if (st != DK_OK) {
        free(*buf);
        *buf = NULL;
    }
    return st;
}

/* ------------------------------------------------------------------ building the list */

typedef struct {
    int id, label, mask, spacing;
    int image[DK_CASE_IMAGES_MAX]; /* columns of channels 0 (`image`), 1 (`image_1`), ... */
    int n_images;
} column_roles;

/* The channel of a column `image_K` (K decimal, 1 <= K < DK_CASE_IMAGES_MAX), else 0. */
static int image_channel(const char *name) {
    if (strncmp(name, "image_", 6) != 0) return 0;
    int k = 0;
    for (const char *c = name + 6; *c; c++) {
        if (*c < '0' || *c > '9' || k >= DK_CASE_IMAGES_MAX) return 0;
        k = 10 * k + (*c - '0');
    }
    return k < DK_CASE_IMAGES_MAX ? k : 0;
}

/* Roles of the channel columns image_1, image_2, ...: each number once, none missing. */
static dk_status find_channels(column_roles *r, const dk_case_list *l) {
    for (int k = 1; k < DK_CASE_IMAGES_MAX; k++) r->image[k] = -1;
    r->n_images = 1;
    for (int i = 0; i < l->n_columns; i++) {
        int k = image_channel(l->columns[i]);
        if (!k) continue;
        if (r->image[k] >= 0)
            return dk_fail(DK_ERR_FORMAT, "%s:1: columns '%s' (%d) and '%s' (%d) both name "
                           "image channel %d", l->path, l->columns[r->image[k]],
                           r->image[k] + 1, l->columns[i], i + 1, k);
        r->image[k] = i;
        if (k + 1 > r->n_images) r->n_images = k + 1;
    }
    for (int k = 1; k < r->n_images; k++)
        if (r->image[k] < 0)
            return dk_fail(DK_ERR_FORMAT, "%s:1: column 'image_%d' is missing while 'image_%d' "
                           "is there (channel columns image_1, image_2, ... have no gaps)",
                           l->path, k, r->n_images - 1);
    return DK_OK;
}

static dk_status find_columns(column_roles *r, const dk_case_list *l) {
    for (int i = 0; i < l->n_columns; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(l->columns[i], l->columns[j]) == 0)
                return dk_fail(DK_ERR_FORMAT, "%s:1: column '%s' appears twice (%d and %d)",
                               l->path, l->columns[i], j + 1, i + 1);
    r->id = dk_cases_column(l, "case");
    r->image[0] = dk_cases_column(l, "image");
    r->label = dk_cases_column(l, "label");
    r->mask = dk_cases_column(l, "mask");
    if (r->mask < 0) r->mask = dk_cases_column(l, "fov");
    r->spacing = dk_cases_column(l, "spacing");
    const char *missing = r->id < 0 ? "case" : r->image[0] < 0 ? "image" : NULL;
    if (missing)
        return dk_fail(DK_ERR_FORMAT, "%s:1: missing required column '%s' (have %d columns, "
                       "first '%s')", l->path, missing, l->n_columns,
                       l->n_columns ? l->columns[0] : "");
    return find_channels(r, l);
}

/* Resolve a field to a path next to the CSV and check that it exists. NULL *out for an
 * empty optional field. */
static dk_status resolve(char **out, const dk_case_list *l, const dk_case *c, int col,
                         int required) {
    *out = NULL;
    const char *f = c->fields[col];
    if (!*f) {
        if (!required) return DK_OK;
        return dk_fail(DK_ERR_FORMAT, "%s:%d: column '%s' (%d): empty path", l->path, c->line,
                       l->columns[col], col + 1);
    }
    const char *slash = strrchr(l->path, '/');
    size_t dir = (f[0] == '/' || !slash) ? 0 : (size_t)(slash - l->path) + 1;
    char *p = malloc(dir + strlen(f) + 1);
    if (!p) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", l->path);
    memcpy(p, l->path, dir);
    strcpy(p + dir, f);
    struct stat sb;
    if (stat(p, &sb) != 0) {
        dk_status st = dk_fail(DK_ERR_IO, "%s:%d: case '%s': column '%s' (%d): file '%s' does "
                               "not exist", l->path, c->line, c->id, l->columns[col], col + 1, p);
        free(p);
        return st;
    }
    *out = p;
    return DK_OK;
}

/* The `spacing` field "XxYxZ" into c->spacing: three numbers of digits, '.', exponent and
 * sign only (so no nan, inf, hex or blanks), each finite and > 0. Empty: all 0. */
static dk_status parse_spacing(dk_case *c, const dk_case_list *l, int col) {
    const char *f = c->fields[col], *p = f;
    if (!*f) return DK_OK;
    double v[3] = {0, 0, 0};
    for (int a = 0; a < 3; a++) {
        size_t n = strspn(p, "0123456789.eE+-");
        char num[64], *end = NULL;
        if (n > 0 && n < sizeof num) {
            memcpy(num, p, n), num[n] = '\0';
            v[a] = strtod(num, &end);
        }
        const char *why = !end || *end ? "is not a number" : !isfinite(v[a]) ? "is not finite"
                          : !(v[a] > 0)                      ? "is not > 0" : NULL;
        if (why)
            return dk_fail(DK_ERR_FORMAT, "%s:%d: case '%s': column 'spacing' (%d): '%s': the %c "
                           "voxel size %s (three mm values > 0 joined by x, as 0.8x0.8x3)",
                           l->path, c->line, c->id, col + 1, f, "xyz"[a], why);
        p += n;
        if (*p != (a < 2 ? 'x' : '\0'))
            return dk_fail(DK_ERR_FORMAT, "%s:%d: case '%s': column 'spacing' (%d): '%s' is not "
                           "three mm values > 0 joined by x (as 0.8x0.8x3)", l->path, c->line,
                           c->id, col + 1, f);
        p += a < 2;
    }
    memcpy(c->spacing, v, sizeof v);
    return DK_OK;
}

void dk_case_spacing_apply(dk_volume *v, const double spacing[3]) {
    if (spacing[0] > 0) memcpy(v->geom.spacing, spacing, sizeof v->geom.spacing);
}

static dk_status add_case(dk_case_list *l, const column_roles *r, strvec *row, int line) {
    if (row->n != l->n_columns)
        return dk_fail(DK_ERR_FORMAT, "%s:%d: %d fields, the header has %d", l->path, line,
                       row->n, l->n_columns);
    dk_case *c = &l->cases[l->n];
    memset(c, 0, sizeof *c);
    c->line = line;
    c->fields = row->v;
    *row = (strvec){0};
    l->n++; /* from here the list owns the row; dk_cases_free releases a partial case */
    const char *id = c->fields[r->id];
    if (!*id)
        return dk_fail(DK_ERR_FORMAT, "%s:%d: column 'case' (%d): empty case id", l->path,
                       line, r->id + 1);
    for (int i = 0; i < l->n - 1; i++)
        if (strcmp(l->cases[i].id, id) == 0)
            return dk_fail(DK_ERR_FORMAT, "%s:%d: column 'case' (%d): duplicate case id '%s' "
                           "(first on line %d)", l->path, line, r->id + 1, id, l->cases[i].line);
    c->id = strdup(id);
    if (!c->id) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", l->path);
    c->images = calloc((size_t)r->n_images, sizeof *c->images);
    if (!c->images) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", l->path);
    dk_status st = DK_OK;
    for (int k = 0; st == DK_OK && k < r->n_images; k++) {
        st = resolve(&c->images[k], l, c, r->image[k], 1);
        c->n_images = k + 1;
    }
    c->image = c->images[0];
    if (st == DK_OK && r->label >= 0) st = resolve(&c->label, l, c, r->label, 0);
    if (st == DK_OK && r->mask >= 0) st = resolve(&c->mask, l, c, r->mask, 0);
    if (st == DK_OK && r->spacing >= 0) st = parse_spacing(c, l, r->spacing);
    return st;
}

static dk_status read_rows(dk_case_list *l, csv *p) {
    strvec row = {0};
    int line, cap = 0;
    column_roles roles = {-1, -1, -1, -1, {-1}, 0};
    dk_status st = parse_record(p, &row, &line);
    if (st == DK_OK && row.n == 0) st = dk_fail(DK_ERR_FORMAT, "%s: empty file", l->path);
    if (st != DK_OK) goto out;
    l->columns = row.v;
    l->n_columns = row.n;
    row = (strvec){0};
    st = find_columns(&roles, l);
    while (st == DK_OK) {
        st = parse_record(p, &row, &line);
        if (st != DK_OK || row.n == 0) break;
        if (l->n == cap) {
            cap = cap ? 2 * cap : 64;
            dk_case *c = realloc(l->cases, (size_t)cap * sizeof *c);
            if (!c) {
                st = dk_fail(DK_ERR_NOMEM, "%s: out of memory", l->path);
                break;
            }
            l->cases = c;
        }
        st = add_case(l, &roles, &row, line);
    }
out:
    strvec_free(&row);
    return st;
}

dk_status dk_cases_read(dk_case_list *list, const char *csv_path) {
    memset(list, 0, sizeof *list);
    char *buf = NULL;
    size_t len = 0;
    dk_status st = slurp(&buf, &len, csv_path);
    if (st != DK_OK) goto out;
    list->path = strdup(csv_path);
    if (!list->path) {
        st = dk_fail(DK_ERR_NOMEM, "%s: out of memory", csv_path);
        goto out;
    }
    csv p = {list->path, buf, len, 0, 1};
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) p.pos = 3; /* UTF-8 BOM */
    st = read_rows(list, &p);
out:
    free(buf);
    if (st != DK_OK) dk_cases_free(list);
    return st;
}

static void free_case(dk_case *c, int n_columns) {
    if (c->fields)
        for (int j = 0; j < n_columns; j++) free(c->fields[j]);
    free(c->fields);
    free(c->id);
    if (c->images)
        for (int k = 0; k < c->n_images; k++) free(c->images[k]);
    free(c->images);
    free(c->label);
    free(c->mask);
}

void dk_cases_free(dk_case_list *list) {
    if (!list) return;
    for (int i = 0; i < list->n; i++) free_case(&list->cases[i], list->n_columns);
    for (int j = 0; j < list->n_columns; j++) free(list->columns[j]);
    free(list->columns);
    free(list->cases);
    free(list->path);
    memset(list, 0, sizeof *list);
}

int dk_cases_column(const dk_case_list *list, const char *name) {
    for (int j = 0; j < list->n_columns; j++)
        if (strcmp(list->columns[j], name) == 0) return j;
    return -1;
}

const char *dk_cases_get(const dk_case_list *list, int i, const char *column) {
    DK_ASSERT(i >= 0 && i < list->n);
    int j = dk_cases_column(list, column);
    return j < 0 ? NULL : list->cases[i].fields[j];
}

/* strdup that maps NULL to NULL and counts failures. */
static char *dup_or_null(const char *s, int *failed) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *failed = 1;
    return d;
}

static int copy_case(dk_case *dst, const dk_case *src, int n_columns) {
    int failed = 0;
    memset(dst, 0, sizeof *dst);
    dst->line = src->line;
    memcpy(dst->spacing, src->spacing, sizeof dst->spacing);
    dst->id = dup_or_null(src->id, &failed);
    dst->images = calloc((size_t)src->n_images, sizeof *dst->images);
    if (!dst->images) return 0;
    dst->n_images = src->n_images;
    for (int k = 0; k < src->n_images; k++) dst->images[k] = dup_or_null(src->images[k], &failed);
    dst->image = dst->images[0];
    dst->label = dup_or_null(src->label, &failed);
    dst->mask = dup_or_null(src->mask, &failed);
    dst->fields = calloc((size_t)n_columns, sizeof *dst->fields);
    if (!dst->fields) return 0;
    for (int j = 0; j < n_columns; j++) dst->fields[j] = dup_or_null(src->fields[j], &failed);
    return !failed;
}

/* Copy into out (zeroed) the cases of in whose field col[k] equals val[k] for every k < nf,
 * in order (nf = 0: every case). */
static dk_status select_cases(dk_case_list *out, const dk_case_list *in, const int *col,
                              const char *const *val, int nf) {
    int failed = 0;
    out->path = dup_or_null(in->path, &failed);
    out->columns = calloc((size_t)in->n_columns, sizeof *out->columns);
    out->cases = calloc((size_t)(in->n ? in->n : 1), sizeof *out->cases);
    if (out->columns) {
        out->n_columns = in->n_columns;
        for (int j = 0; j < in->n_columns; j++)
            out->columns[j] = dup_or_null(in->columns[j], &failed);
    }
    failed |= !out->path || !out->columns || !out->cases;
    for (int i = 0; i < in->n && !failed; i++) {
        int k = 0;
        while (k < nf && strcmp(in->cases[i].fields[col[k]], val[k]) == 0) k++;
        if (k < nf) continue;
        failed = !copy_case(&out->cases[out->n++], &in->cases[i], in->n_columns);
    }
    if (!failed) return DK_OK;
    dk_cases_free(out);
    return dk_fail(DK_ERR_NOMEM, "%s: out of memory while filtering", in->path);
}

dk_status dk_cases_filter(dk_case_list *out, const dk_case_list *in, const char *column,
                          const char *value) {
    DK_ASSERT(out != in);
    memset(out, 0, sizeof *out);
    int col = dk_cases_column(in, column);
    if (col < 0) return dk_fail(DK_ERR_ARG, "%s: no column '%s' to filter on", in->path, column);
    return select_cases(out, in, &col, &value, 1);
}

const char *dk_cases_where_text(char *buf, size_t n, const char *const *where) {
    size_t used = 0;
    if (n) buf[0] = '\0';
    for (int k = 0; where && where[k] && used < n; k++) {
        const char *eq = strchr(where[k], '=');
        int len = eq ? (int)(eq - where[k]) : (int)strlen(where[k]);
        used += (size_t)snprintf(buf + used, n - used, "%s%.*s = %s", k ? " and " : "", len,
                                 where[k], eq ? eq + 1 : "");
    }
    return buf;
}

/* Index of the column named by the len bytes at name, or -1. */
static int column_n(const dk_case_list *l, const char *name, size_t len) {
    for (int j = 0; j < l->n_columns; j++)
        if (strlen(l->columns[j]) == len && memcmp(l->columns[j], name, len) == 0) return j;
    return -1;
}

dk_status dk_cases_where(dk_case_list *out, const dk_case_list *in, const char *const *where,
                         int need_one) {
    DK_ASSERT(out != in);
    memset(out, 0, sizeof *out);
    int nf = 0;
    while (where && where[nf]) nf++;
    int *col = malloc((size_t)(nf ? nf : 1) * sizeof *col);
    const char **val = malloc((size_t)(nf ? nf : 1) * sizeof *val);
    dk_status st = col && val ? DK_OK : dk_fail(DK_ERR_NOMEM, "%s: %d filters", in->path, nf);
    for (int k = 0; k < nf && st == DK_OK; k++) {
        const char *w = where[k], *eq = strchr(w, '=');
        if (!eq || eq == w)
            st = dk_fail(DK_ERR_ARG, "%s: filter '%s' is not column=value", in->path, w);
        else if ((col[k] = column_n(in, w, (size_t)(eq - w))) < 0)
            st = dk_fail(DK_ERR_ARG, "%s: no column '%.*s' to filter on", in->path, (int)(eq - w),
                         w);
        else
            val[k] = eq + 1;
    }
    if (st == DK_OK) st = select_cases(out, in, col, val, nf);
    if (st == DK_OK && need_one && out->n == 0) {
        char text[1024];
        st = nf ? dk_fail(DK_ERR_ARG, "%s: no case has %s", in->path,
                          dk_cases_where_text(text, sizeof text, where))
                : dk_fail(DK_ERR_ARG, "%s: the case list is empty", in->path);
        dk_cases_free(out);
    }
    free(col);
    free(val);
    return st;
}
