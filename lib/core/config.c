/*
 * Configs from one typed table per struct: defaults, INI loading through inih, --set
 * overrides, the effective config written back, and the help text (dakd/core.h).
 */
#include "dakd/core.h"

#include <ini.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* inih reads lines into a buffer of INI_MAX_LINE bytes that also holds "\r\n\0". */
enum { VALUE_MAX = 4096, NAME_MAX_ = 128, LINE_CHARS = INI_MAX_LINE - 3 };
/* a list's entry fits on a line of its own after any key (dk_cfg_write breaks lists) */
enum { LIST_ENTRY_MAX = LINE_CHARS - NAME_MAX_ / 2 };

static void *field_ptr(void *obj, const dk_cfg_field *f) { return (char *)obj + f->offset; }

static const void *field_cptr(const void *obj, const dk_cfg_field *f) {
    return (const char *)obj + f->offset;
}

static const char *type_name(dk_cfg_type t) {
    switch (t) {
    case DK_CFG_INT: return "int";
    case DK_CFG_INT64: return "int64";
    case DK_CFG_DOUBLE: return "double";
    case DK_CFG_FLOAT: return "float";
    case DK_CFG_BOOL: return "bool";
    case DK_CFG_STRING: return "string";
    case DK_CFG_ENUM: return "enum";
    case DK_CFG_LIST: return "list";
    }
    return "?";
}

static int is_number_type(dk_cfg_type t) {
    return t == DK_CFG_INT || t == DK_CFG_INT64 || t == DK_CFG_DOUBLE || t == DK_CFG_FLOAT;
}

static void fmt_bound(char *buf, size_t n, double v, int integer) {
    if (isinf(v)) snprintf(buf, n, "%s", v < 0 ? "-inf" : "inf");
    else if (integer) snprintf(buf, n, "%.0f", v);
    else snprintf(buf, n, "%g", v);
}

/* "[lo, hi]" for numbers, "a|b|c" for enums, "" otherwise. */
static void fmt_range(char *buf, size_t n, const dk_cfg_field *f) {
    buf[0] = '\0';
    if (is_number_type(f->type)) {
        char lo[48], hi[48];
        int integer = f->type == DK_CFG_INT || f->type == DK_CFG_INT64;
        fmt_bound(lo, sizeof lo, f->min, integer);
        fmt_bound(hi, sizeof hi, f->max, integer);
        snprintf(buf, n, "[%s, %s]", lo, hi);
    } else if (f->type == DK_CFG_ENUM) {
        size_t used = 0;
        for (int i = 0; f->enum_names[i] && used + 1 < n; i++) {
            int k = snprintf(buf + used, n - used, "%s%s", i ? "|" : "", f->enum_names[i]);
            if (k < 0) break;
            used += (size_t)k < n - used ? (size_t)k : n - used - 1;
        }
    } else if (f->type == DK_CFG_STRING || f->type == DK_CFG_LIST) {
        snprintf(buf, n, "at most %zu chars", f->size - 1);
    }
}

/* ---------------------------------------------------------------- value parsing */

static dk_status fail_range(const char *where, const dk_cfg_field *f, const char *v) {
    char range[256];
    fmt_range(range, sizeof range, f);
    return dk_fail(DK_ERR_ARG, "%s: [%s] %s = %s is out of range %s", where, f->section, f->key,
                   v, range);
}

static dk_status parse_integer(void *obj, const dk_cfg_field *f, const char *v,
                               const char *where) {
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end != '\0')
        return dk_fail(DK_ERR_ARG, "%s: [%s] %s = '%s' is not an integer", where, f->section,
                       f->key, v);
    if (errno == ERANGE || (double)x < f->min || (double)x > f->max ||
        (f->type == DK_CFG_INT && (x < INT32_MIN || x > INT32_MAX)))
        return fail_range(where, f, v);
    if (f->type == DK_CFG_INT) *(int *)field_ptr(obj, f) = (int)x;
    else *(int64_t *)field_ptr(obj, f) = (int64_t)x;
    return DK_OK;
}

int dk_parse_numbers(double *v, int max, const char *text) {
    const char *p = text;
    while (isspace((unsigned char)*p)) p++;
    if (!*p) return 0;
    for (int n = 0;; n++) {
        char *end;
        double x = strtod(p, &end);
        if (end == p || n >= max || !isfinite(x)) return -1;
        v[n] = x;
        while (isspace((unsigned char)*end)) end++;
        if (*end == '\0') return n + 1;
        if (*end != ',') return -1;
        p = end + 1;
    }
}

static dk_status parse_real(void *obj, const dk_cfg_field *f, const char *v, const char *where) {
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || !isfinite(x))
        return dk_fail(DK_ERR_ARG, "%s: [%s] %s = '%s' is not a finite number", where,
                       f->section, f->key, v);
    if (x < f->min || x > f->max) return fail_range(where, f, v);
    if (f->type == DK_CFG_DOUBLE) *(double *)field_ptr(obj, f) = x;
    else *(float *)field_ptr(obj, f) = (float)x;
    return DK_OK;
}

static dk_status parse_bool(void *obj, const dk_cfg_field *f, const char *v, const char *where) {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
            *(int *)field_ptr(obj, f) = strcasecmp(v, yes[i]) == 0;
            return DK_OK;
        }
    }
    return dk_fail(DK_ERR_ARG,
                   "%s: [%s] %s = '%s' is not a boolean (true/false, yes/no, on/off, 1/0)", where,
                   f->section, f->key, v);
}

static dk_status parse_enum(void *obj, const dk_cfg_field *f, const char *v, const char *where) {
    for (int i = 0; f->enum_names[i]; i++) {
        if (strcmp(v, f->enum_names[i]) == 0) {
            *(int *)field_ptr(obj, f) = i;
            return DK_OK;
        }
    }
    char names[256];
    fmt_range(names, sizeof names, f);
    return dk_fail(DK_ERR_ARG, "%s: [%s] %s = '%s' is not one of %s", where, f->section, f->key,
                   v, names);
}

/* A ';' at the start of the value or after a blank would start an inline comment when the
 * file is read back: dk_cfg_write puts a blank after '=', so "key=;x" would come back as
 * "key = ;x", an empty value. */
static int has_inline_comment(const char *v) {
    for (const char *p = strchr(v, ';'); p; p = strchr(p + 1, ';'))
        if (p == v || isspace((unsigned char)p[-1])) return 1;
    return 0;
}

/* Store text v in a string or list field: it must fit the field and, for a string (one
 * line in a written file), the line "key = v"; no line break, no ';' that would start a
 * comment when read back. */
static dk_status store_text(void *obj, const dk_cfg_field *f, const char *v, const char *where) {
    size_t len = strlen(v);
    if (len + 1 > f->size)
        return dk_fail(DK_ERR_ARG, "%s: [%s] %s is %zu characters long (at most %zu)", where,
                       f->section, f->key, len, f->size - 1);
    if (f->type == DK_CFG_STRING && strlen(f->key) + 3 + len > LINE_CHARS)
        return dk_fail(DK_ERR_ARG, "%s: [%s] %s = ... is %zu characters long; the line "
                       "'%s = value' must fit in %d (the INI reader's limit)", where,
                       f->section, f->key, len, f->key, LINE_CHARS);
    if (strpbrk(v, "\r\n") || has_inline_comment(v))
        return dk_fail(DK_ERR_ARG,
                       "%s: [%s] %s = '%s' holds a line break, or a ';' at its start or after "
                       "a blank (a comment when the effective config is read back)",
                       where, f->section, f->key, v);
    memcpy(field_ptr(obj, f), v, len + 1);
    return DK_OK;
}

/* [*b, *e) without the blanks at either end. */
static void trim_span(const char **b, const char **e) {
    while (*b < *e && isspace((unsigned char)**b)) (*b)++;
    while (*e > *b && isspace((unsigned char)(*e)[-1])) (*e)--;
}

/* A list: its entries without the blanks around them, empty ones dropped, joined by ", "
 * (so that dk_cfg_write can break it at its separators and read it back the same). */
static dk_status parse_list(void *obj, const dk_cfg_field *f, const char *v, const char *where) {
    char out[VALUE_MAX];
    size_t len = 0;
    for (const char *p = v; *p;) {
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        const char *b = p, *q = e;
        trim_span(&b, &q);
        size_t k = (size_t)(q - b);
        if (k > LIST_ENTRY_MAX)
            return dk_fail(DK_ERR_ARG, "%s: [%s] %s: an entry of %zu characters (at most %d)",
                           where, f->section, f->key, k, LIST_ENTRY_MAX);
        if (k > 0) {
            if (len + k + 3 > sizeof out)
                return dk_fail(DK_ERR_ARG, "%s: [%s] %s is too long (at most %zu characters)",
                               where, f->section, f->key, f->size - 1);
            if (len) out[len++] = ',', out[len++] = ' ';
            memcpy(out + len, b, k);
            len += k;
        }
        p = *e ? e + 1 : e;
    }
    out[len] = '\0';
    return store_text(obj, f, out, where);
}

/* Parse `v` into the field; on failure the field is unchanged and the message names
 * `where` ("file:line" or "override"). */
static dk_status parse_value(void *obj, const dk_cfg_field *f, const char *v,
                             const char *where) {
    switch (f->type) {
    case DK_CFG_INT:
    case DK_CFG_INT64: return parse_integer(obj, f, v, where);
    case DK_CFG_DOUBLE:
    case DK_CFG_FLOAT: return parse_real(obj, f, v, where);
    case DK_CFG_BOOL: return parse_bool(obj, f, v, where);
    case DK_CFG_ENUM: return parse_enum(obj, f, v, where);
    case DK_CFG_STRING: return store_text(obj, f, v, where);
    case DK_CFG_LIST: return parse_list(obj, f, v, where);
    }
    return dk_fail(DK_ERR_INTERNAL, "%s: [%s] %s has an unknown type", where, f->section, f->key);
}

void dk_cfg_defaults(void *obj, const dk_cfg_field *t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        DK_ASSERT(t[i].def != NULL);
        DK_ASSERT(t[i].type != DK_CFG_ENUM || t[i].enum_names != NULL);
        DK_ASSERT((t[i].type != DK_CFG_STRING && t[i].type != DK_CFG_LIST) || t[i].size > 0);
        dk_status st = parse_value(obj, &t[i], t[i].def, "default");
        DK_ASSERT(st == DK_OK);
    }
}

/* ---------------------------------------------------------------- lookup */

static long find_field(const dk_cfg_field *t, size_t n, const char *section, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].section, section) == 0 && strcmp(t[i].key, key) == 0) return (long)i;
    return -1;
}

const dk_cfg_field *dk_cfg_find(const dk_cfg_field *t, size_t n, const char *section,
                                const char *key) {
    long i = find_field(t, n, section, key);
    return i < 0 ? NULL : &t[i];
}

/* Levenshtein distance of two short strings (longer ones count as far apart). */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la >= NAME_MAX_ || lb >= NAME_MAX_) return SIZE_MAX;
    size_t row[NAME_MAX_ + 1];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest known key to section.key: a key of the same section that starts with the
 * given one (lr -> lr_base) wins, else the smallest edit distance of "section.key" if it is
 * at most 3. Returns the index or -1. */
static long suggest_field(const dk_cfg_field *t, size_t n, const char *section,
                          const char *key) {
    char want[2 * NAME_MAX_], have[2 * NAME_MAX_];
    snprintf(want, sizeof want, "%s.%s", section, key);
    long best = -1;
    size_t best_d = 4;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(t[i].section, section) == 0 && key[0] &&
            strncmp(t[i].key, key, strlen(key)) == 0)
            return (long)i;
        snprintf(have, sizeof have, "%s.%s", t[i].section, t[i].key);
        size_t d = edit_distance(want, have);
        if (d < best_d) {
            best_d = d;
            best = (long)i;
        }
    }
    return best;
}

static dk_status fail_unknown(const char *where, const dk_cfg_field *t, size_t n,
                              const char *section, const char *key, int dotted) {
    long s = suggest_field(t, n, section, key);
    char hint[2 * NAME_MAX_ + 32] = "";
    if (s >= 0 && dotted)
        snprintf(hint, sizeof hint, "; did you mean %s.%s?", t[s].section, t[s].key);
    else if (s >= 0)
        snprintf(hint, sizeof hint, "; did you mean [%s] %s?", t[s].section, t[s].key);
    if (dotted) return dk_fail(DK_ERR_ARG, "%s: unknown key %s.%s%s", where, section, key, hint);
    return dk_fail(DK_ERR_ARG, "%s: unknown key [%s] %s%s", where, section, key, hint);
}

/* ---------------------------------------------------------------- loading */

/* The next line of a file into str (num bytes); its length, or -1 at the end. *at_end: no
 * more text follows it. */
static long next_file_line(char *str, int num, FILE *f, int *at_end) {
    if (!fgets(str, num, f)) return -1;
    size_t len = strlen(str);
    *at_end = 0;
    if (len > 0 && str[len - 1] != '\n') {
        int ch = fgetc(f);
        *at_end = ch == EOF;
        if (!*at_end) ungetc(ch, f);
    }
    return (long)len;
}

/* The same from a text, advancing *text past the line. */
static long next_text_line(char *str, int num, const char **text, int *at_end) {
    if (**text == '\0') return -1;
    const char *nl = strchr(*text, '\n');
    size_t len = nl ? (size_t)(nl - *text) + 1 : strlen(*text);
    if (len > (size_t)num - 1) len = (size_t)num - 1;
    memcpy(str, *text, len);
    str[len] = '\0';
    *text += len;
    *at_end = **text == '\0';
    return (long)len;
}

/* inih (Debian's build) calls the handler without a line number, so the reader counts the
 * lines it hands over: the handler of a line runs before the next line is read. */
static char *read_line(char *str, int num, void *source) {
    dk_ini_source *s = source;
    if (s->st != DK_OK) return NULL;
    int at_end = 0;
    long len = s->file ? next_file_line(str, num, s->file, &at_end)
                       : next_text_line(str, num, &s->text, &at_end);
    if (len < 0) return NULL;
    s->line++;
    s->continued = len > 0 && (str[0] == ' ' || str[0] == '\t');
    /* a line that does not fit inih's buffer would be split and misread */
    if ((size_t)len + 1 >= (size_t)num && str[len - 1] != '\n' && !at_end) {
        s->st = dk_fail(DK_ERR_ARG, "%s:%d: line longer than %d characters", s->name, s->line,
                        num - 3);
        return NULL;
    }
    return str;
}

dk_status dk_ini_parse(dk_ini_source *src, dk_ini_handler on_key, void *user) {
    int rc = ini_parse_stream(read_line, src, on_key, user);
    /* inih keeps going after a syntax error; its return value is the first bad line. A
     * failure of ours stops the reading on its own line (src->line). */
    if (rc > 0 && (src->st == DK_OK || rc < src->line))
        return dk_fail(DK_ERR_ARG, "%s:%d: syntax error (expected [section] or key = value)",
                       src->name, rc);
    if (src->st != DK_OK) return src->st;
    if (rc == -2) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", src->name);
    if (rc != 0) return dk_fail(DK_ERR_INTERNAL, "%s: inih failed (%d)", src->name, rc);
    return DK_OK;
}

typedef struct {
    void *obj;
    const dk_cfg_field *t;
    size_t n;
    dk_ini_source src; /* the lines; src.st also holds the handler's first failure */
    int *seen;         /* (n) line where each field was set, 0 = not yet */
} load_ctx;

static int on_key(void *user, const char *section, const char *key, const char *value) {
    load_ctx *c = user;
    dk_ini_source *src = &c->src;
    if (src->st != DK_OK) return 1; /* report the first failure only */
    char where[NAME_MAX_ * 4];
    snprintf(where, sizeof where, "%s:%d", src->name, src->line);
    long i = find_field(c->t, c->n, section, key);
    if (src->continued) {
        char joined[VALUE_MAX];
        src->st = dk_cfg_continue(joined, sizeof joined, c->obj, i < 0 ? NULL : &c->t[i],
                                  section, key, value, where);
        if (src->st == DK_OK) src->st = parse_value(c->obj, &c->t[i], joined, where);
    } else if (i < 0) {
        src->st = fail_unknown(where, c->t, c->n, section, key, 0);
    } else if (c->seen[i]) {
        src->st = dk_fail(DK_ERR_ARG, "%s: duplicate key [%s] %s (first set on line %d)", where,
                          section, key, c->seen[i]);
    } else {
        src->st = parse_value(c->obj, &c->t[i], value, where);
        c->seen[i] = src->line;
    }
    return src->st == DK_OK;
}

static dk_status run_parse(load_ctx *c) {
    c->seen = calloc(c->n ? c->n : 1, sizeof *c->seen);
    if (!c->seen) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", c->src.name);
    dk_status st = dk_ini_parse(&c->src, on_key, c);
    free(c->seen);
    c->seen = NULL;
    return st;
}

dk_status dk_cfg_load(void *obj, const dk_cfg_field *t, size_t n, const char *path) {
    load_ctx c = {.obj = obj, .t = t, .n = n, .src = {.name = path, .st = DK_OK}};
    c.src.file = fopen(path, "r");
    if (!c.src.file)
        return dk_fail(DK_ERR_IO, "%s: cannot open config: %s", path, strerror(errno));
    dk_status st = run_parse(&c);
    if (st == DK_OK && ferror(c.src.file)) st = dk_fail(DK_ERR_IO, "%s: read error", path);
    fclose(c.src.file);
    return st;
}

dk_status dk_cfg_load_string(void *obj, const dk_cfg_field *t, size_t n, const char *text,
                             const char *name) {
    load_ctx c = {.obj = obj, .t = t, .n = n,
                  .src = {.name = name ? name : "<string>", .text = text, .st = DK_OK}};
    return run_parse(&c);
}

/* ---------------------------------------------------------------- --set */

/* Copy [b, e) into out (size n) without surrounding blanks; 0 if it does not fit. */
static int copy_trimmed(char *out, size_t n, const char *b, const char *e) {
    trim_span(&b, &e);
    if ((size_t)(e - b) >= n) return 0;
    memcpy(out, b, (size_t)(e - b));
    out[e - b] = '\0';
    return 1;
}

dk_status dk_cfg_set(void *obj, const dk_cfg_field *t, size_t n, const char *assignment) {
    const char *eq = strchr(assignment, '=');
    const char *dot = eq ? memchr(assignment, '.', (size_t)(eq - assignment)) : NULL;
    if (!eq || !dot)
        return dk_fail(DK_ERR_ARG, "override '%s': expected section.key=value", assignment);
    char section[NAME_MAX_], key[NAME_MAX_], value[VALUE_MAX];
    if (!copy_trimmed(section, sizeof section, assignment, dot) ||
        !copy_trimmed(key, sizeof key, dot + 1, eq) ||
        !copy_trimmed(value, sizeof value, eq + 1, eq + strlen(eq)))
        return dk_fail(DK_ERR_ARG, "override '%.64s...': too long", assignment);
    long i = find_field(t, n, section, key);
    if (i < 0) return fail_unknown("override", t, n, section, key, 1);
    return parse_value(obj, &t[i], value, "override");
}

dk_status dk_cfg_continue(char *joined, size_t n, const void *obj, const dk_cfg_field *f,
                          const char *section, const char *key, const char *value,
                          const char *where) {
    if (!f || f->type != DK_CFG_LIST)
        return dk_fail(DK_ERR_ARG, "%s: an indented line goes on with the value of [%s] %s "
                       "above it, which is not a list (only lists may go on over lines); "
                       "remove the blanks at the start of the line", where, section, key);
    char cur[VALUE_MAX];
    dk_cfg_format(cur, sizeof cur, obj, f);
    int k = snprintf(joined, n, "%s%s%s", cur, cur[0] ? ", " : "", value);
    if (k < 0 || (size_t)k >= n)
        return dk_fail(DK_ERR_ARG, "%s: [%s] %s is too long", where, section, key);
    return DK_OK;
}

dk_status dk_cfg_assign(void *obj, const dk_cfg_field *t, size_t n, const char *section,
                        const char *key, const char *value, const char *where) {
    long i = find_field(t, n, section, key);
    if (i < 0) return fail_unknown(where, t, n, section, key, 0);
    return parse_value(obj, &t[i], value, where);
}

/* ---------------------------------------------------------------- writing and help */

/* The shortest of %.{6..17}g that reads back to exactly x. */
static void fmt_double(char *buf, size_t n, double x) {
    for (int p = 6; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, x);
        if (strtod(buf, NULL) == x) return;
    }
}

void dk_cfg_format(char *buf, size_t bufn, const void *obj, const dk_cfg_field *f) {
    if (!buf || bufn == 0) return;
    const void *p = field_cptr(obj, f);
    switch (f->type) {
    case DK_CFG_INT: snprintf(buf, bufn, "%d", *(const int *)p); break;
    case DK_CFG_INT64: snprintf(buf, bufn, "%lld", (long long)*(const int64_t *)p); break;
    case DK_CFG_DOUBLE: fmt_double(buf, bufn, *(const double *)p); break;
    case DK_CFG_FLOAT: {
        float x = *(const float *)p;
        for (int k = 6; k <= 9; k++) {
            snprintf(buf, bufn, "%.*g", k, (double)x);
            if ((float)strtod(buf, NULL) == x) break;
        }
        break;
    }
    case DK_CFG_BOOL: snprintf(buf, bufn, "%s", *(const int *)p ? "true" : "false"); break;
    case DK_CFG_STRING:
    case DK_CFG_LIST: snprintf(buf, bufn, "%.*s", (int)f->size, (const char *)p); break;
    case DK_CFG_ENUM: {
        int v = *(const int *)p, k = 0;
        while (f->enum_names[k] && k < v) k++;
        snprintf(buf, bufn, "%s", v >= 0 && f->enum_names[k] ? f->enum_names[k] : "?");
        break;
    }
    }
}

/* " value\n" after "key =" (`used` characters of the line so far); a list too long for the
 * line goes on over indented lines, broken at its ", " separators (parse_list wrote them). */
static int write_value(FILE *fp, const char *value, size_t used, int list) {
    if (!list || used + 1 + strlen(value) <= LINE_CHARS) return fprintf(fp, " %s\n", value) >= 0;
    const char *p = value;
    while (*p) {
        size_t room = LINE_CHARS - used - 1, k = strlen(p);
        if (k > room) { /* the last separator that fits (an entry is shorter than a line) */
            const char *cut = NULL;
            for (const char *q = p; (q = strstr(q, ", ")) && (size_t)(q - p) <= room; q += 2)
                cut = q;
            k = cut ? (size_t)(cut - p) : k;
        }
        if (fprintf(fp, " %.*s\n", (int)k, p) < 0) return 0;
        p += k;
        if (*p) p += 2; /* the ", " the line break stands for */
        if (*p && fputs("   ", fp) < 0) return 0;
        used = 3;
    }
    return 1;
}

static int write_fields(FILE *fp, const void *obj, const dk_cfg_field *t, size_t n) {
    char value[VALUE_MAX], range[256];
    const char *section = NULL;
    if (fprintf(fp, "; effective configuration, written by %s\n", dk_version_string()) < 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!section || strcmp(section, t[i].section) != 0) {
            section = t[i].section;
            if (fprintf(fp, "\n[%s]\n", section) < 0) return 0;
        }
        fmt_range(range, sizeof range, &t[i]);
        dk_cfg_format(value, sizeof value, obj, &t[i]);
        /* comments are cut to the reader's line limit, so the file always reads back */
        if (fprintf(fp, "; %.*s\n; (%.*s %.*s, default %.*s)\n%s =", LINE_CHARS - 2,
                    t[i].help ? t[i].help : "", 48, type_name(t[i].type), 80, range, 60,
                    t[i].def, t[i].key) < 0 ||
            !write_value(fp, value, strlen(t[i].key) + 2, t[i].type == DK_CFG_LIST))
            return 0;
    }
    return 1;
}

dk_status dk_cfg_write(const void *obj, const dk_cfg_field *t, size_t n, const char *path) {
    char tmp[4096];
    dk_status st = dk_tmp_path_for(tmp, sizeof tmp, path);
    if (st != DK_OK) return st;
    FILE *fp = fopen(tmp, "w");
    if (!fp) return dk_fail(DK_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    int ok = write_fields(fp, obj, t, n);
    if (fclose(fp) != 0) ok = 0;
    if (!ok) {
        remove(tmp);
        return dk_fail(DK_ERR_IO, "%s: cannot write %s", path, tmp);
    }
    return dk_commit_file(tmp, path);
}

void dk_cfg_print_help(const dk_cfg_field *t, size_t n, FILE *out) {
    char name[2 * NAME_MAX_], range[256];
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s.%s", t[i].section, t[i].key);
        fmt_range(range, sizeof range, &t[i]);
        fprintf(out, "  %-30s %-6s %-24s default %s\n", name, type_name(t[i].type), range,
                t[i].def[0] ? t[i].def : "\"\"");
        if (t[i].help && t[i].help[0]) fprintf(out, "      %s\n", t[i].help);
    }
}
