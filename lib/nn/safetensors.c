/* safetensors checkpoints: an 8-byte little-endian header length N, N bytes of JSON (built
 * and parsed with cJSON), then the tensors' raw little-endian bytes packed in order.
 *
 * Writing follows the reference implementation (huggingface/safetensors): the header
 * starts with "__metadata__" when there is any, then one entry per tensor in the caller's
 * order, and is padded with spaces so the data starts at a multiple of 8.
 *
 * Reading validates as strictly as the reference: N at most 100 MB and inside the file;
 * the header a JSON object; __metadata__ an object of strings; every tensor F32 with
 * non-negative integer dims whose byte size equals its data_offsets span; the spans,
 * sorted, tile the data exactly (no overlap, no gap, no trailing bytes); no name twice.
 * Only then are the caller's tensors matched by name and shape and read. Every message
 * names the file and the tensor or field. (UTF-8 validity of names is not checked.) */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dakd/nn.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "dakd's safetensors code copies float32 bytes as they are: a little-endian host is required"
#endif

#define MAX_HEADER   100000000LL        /* the reference implementation's limit */
#define MAX_INT_JSON 9007199254740992.0 /* 2^53: the largest integer a double holds exactly */
enum { FILE_MAX_DIMS = 8, SHAPE_TEXT = 160 };

/* ================================================================ writing */

static int64_t ref_numel(const dk_tensor_ref *r) {
    int64_t n = 1;
    for (int d = 0; d < r->ndim; d++) {
        if (r->shape[d] < 0 || (r->shape[d] > 0 && n > INT64_MAX / 8 / r->shape[d])) return -1;
        n *= r->shape[d];
    }
    return n;
}

static dk_status add_meta(cJSON *root, const char *path, const char *const *meta) {
    cJSON *md = cJSON_AddObjectToObject(root, "__metadata__");
    if (!md) return dk_fail(DK_ERR_NOMEM, "%s: cannot build the JSON header", path);
    for (int k = 0; meta[k]; k += 2) {
        if (!meta[k + 1])
            return dk_fail(DK_ERR_ARG, "%s: __metadata__ key %s has no value", path, meta[k]);
        if (cJSON_GetObjectItemCaseSensitive(md, meta[k]))
            return dk_fail(DK_ERR_ARG, "%s: __metadata__ key %s given twice", path, meta[k]);
        if (!cJSON_AddStringToObject(md, meta[k], meta[k + 1]))
            return dk_fail(DK_ERR_NOMEM, "%s: cannot build the JSON header", path);
    }
    return DK_OK;
}

/* One tensor's entry {"dtype", "shape", "data_offsets"}; *offset advances past it. */
static dk_status add_tensor(cJSON *root, const char *path, const dk_tensor_ref *r,
                            int64_t *offset) {
    const char *name = r->name;
    if (!name || !name[0] || strcmp(name, "__metadata__") == 0)
        return dk_fail(DK_ERR_ARG, "%s: bad tensor name \"%s\"", path, name ? name : "(null)");
    if (cJSON_GetObjectItemCaseSensitive(root, name))
        return dk_fail(DK_ERR_ARG, "%s: tensor %s: name given twice", path, name);
    int64_t numel = (r->ndim >= 0 && r->ndim <= 5) ? ref_numel(r) : -1;
    if (numel < 0 || (numel > 0 && !r->data))
        return dk_fail(DK_ERR_ARG, "%s: tensor %s: bad shape (ndim %d) or no data", path, name,
                       r->ndim);
    const int64_t bytes = numel * (int64_t)sizeof(float);
    if ((double)(*offset + bytes) > MAX_INT_JSON)
        return dk_fail(DK_ERR_ARG, "%s: tensor %s: data beyond 2^53 bytes", path, name);
    cJSON *e = cJSON_AddObjectToObject(root, name);
    cJSON *shape = e ? cJSON_AddArrayToObject(e, "shape") : NULL;
    cJSON *offs = shape && cJSON_AddStringToObject(e, "dtype", "F32")
                      ? cJSON_AddArrayToObject(e, "data_offsets")
                      : NULL;
    int ok = offs != NULL;
    for (int d = 0; ok && d < r->ndim; d++)
        ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)r->shape[d]));
    ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)*offset));
    ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(*offset + bytes)));
    if (!ok) return dk_fail(DK_ERR_NOMEM, "%s: cannot build the JSON header", path);
    *offset += bytes;
    return DK_OK;
}

/* The header text padded with spaces to a multiple of 8 (malloc'd, *len its length). */
static dk_status build_header(char **out, size_t *len, const char *path, const dk_tensor_ref *t,
                              int n, const char *const *meta) {
    dk_status st = DK_OK;
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) return dk_fail(DK_ERR_NOMEM, "%s: cannot build the JSON header", path);
    if (meta && (st = add_meta(root, path, meta)) != DK_OK) goto out;
    int64_t offset = 0;
    for (int i = 0; i < n; i++)
        if ((st = add_tensor(root, path, &t[i], &offset)) != DK_OK) goto out;
    if (!(text = cJSON_PrintUnformatted(root))) {
        st = dk_fail(DK_ERR_NOMEM, "%s: cannot print the JSON header", path);
        goto out;
    }
    size_t raw = strlen(text), padded = (raw + 7) / 8 * 8;
    if (!(*out = malloc(padded))) {
        st = dk_fail(DK_ERR_NOMEM, "%s: cannot allocate the header", path);
        goto out;
    }
    memcpy(*out, text, raw);
    memset(*out + raw, ' ', padded - raw);
    *len = padded;
out:
    cJSON_free(text);
    cJSON_Delete(root);
    return st;
}

static dk_status write_body(FILE *f, const char *path, const char *header, size_t hlen,
                            const dk_tensor_ref *t, int n) {
    unsigned char nbuf[8];
    uint64_t hl = (uint64_t)hlen;
    memcpy(nbuf, &hl, sizeof nbuf); /* little-endian host (checked above) */
    int ok = fwrite(nbuf, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen;
    for (int i = 0; ok && i < n; i++) {
        size_t numel = (size_t)ref_numel(&t[i]);
        ok = numel == 0 || fwrite(t[i].data, sizeof(float), numel, f) == numel;
    }
    if (!ok) return dk_fail(DK_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return DK_OK;
}

dk_status dk_safetensors_write(const char *path, const dk_tensor_ref *t, int n,
                               const char *const *meta) {
    DK_ASSERT(path != NULL && (t != NULL || n == 0) && n >= 0);
    char tmp[4096];
    char *header = NULL;
    size_t hlen = 0;
    FILE *f = NULL;
    dk_status st = build_header(&header, &hlen, path, t, n, meta);
    if (st != DK_OK) goto out;
    if ((st = dk_tmp_path_for(tmp, sizeof tmp, path)) != DK_OK) goto out;
    if (!(f = fopen(tmp, "wb"))) {
        st = dk_fail(DK_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto out;
    }
    st = write_body(f, path, header, hlen, t, n);
    int close_err = fclose(f);
    f = NULL;
    if (st == DK_OK && close_err != 0)
        st = dk_fail(DK_ERR_IO, "%s: write failed on close: %s", path, strerror(errno));
    if (st != DK_OK) {
        unlink(tmp);
        goto out;
    }
    st = dk_commit_file(tmp, path); /* removes tmp itself when it fails */
out:
    free(header);
    return st;
}

/* ================================================================ reading */

typedef struct {
    const char *name; /* borrowed from the parsed header */
    int ndim;
    int64_t shape[FILE_MAX_DIMS];
    int64_t begin, end; /* bytes from the start of the data */
    int used;
} entry;

typedef struct {
    const char *path;
    FILE *f;
    int64_t header_len, data_size; /* data starts at 8 + header_len */
    char *text;                    /* header, NUL-terminated */
    cJSON *root;
    entry *e;
    int n;
} st_file;

static int json_uint(const cJSON *x, int64_t *out) {
    if (!cJSON_IsNumber(x)) return 0;
    double d = x->valuedouble;
    if (!(d >= 0.0 && d <= MAX_INT_JSON) || d != (double)(int64_t)d) return 0;
    *out = (int64_t)d;
    return 1;
}

static void shape_text(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* Open the file, check N against the file size and read the header text. */
static dk_status read_header(st_file *s) {
    const char *path = s->path;
    if (!(s->f = fopen(path, "rb")))
        return dk_fail(DK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(s->f), &sb) != 0)
        return dk_fail(DK_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    const int64_t size = (int64_t)sb.st_size;
    unsigned char nbuf[8];
    if (size < 8 || fread(nbuf, 1, 8, s->f) != 8)
        return dk_fail(DK_ERR_FORMAT, "%s: header length: file has %lld bytes, needs 8", path,
                       (long long)size);
    uint64_t n;
    memcpy(&n, nbuf, sizeof n);
    if (n > (uint64_t)MAX_HEADER)
        return dk_fail(DK_ERR_FORMAT, "%s: header length %llu exceeds the 100 MB limit", path,
                       (unsigned long long)n);
    if ((int64_t)n > size - 8)
        return dk_fail(DK_ERR_FORMAT,
                       "%s: header length %llu but only %lld bytes follow "
                       "(truncated header)",
                       path, (unsigned long long)n, (long long)size - 8);
    s->header_len = (int64_t)n;
    s->data_size = size - 8 - s->header_len;
    if (!(s->text = malloc((size_t)n + 1)))
        return dk_fail(DK_ERR_NOMEM, "%s: cannot allocate a %llu-byte header", path,
                       (unsigned long long)n);
    if (fread(s->text, 1, (size_t)n, s->f) != (size_t)n)
        return dk_fail(DK_ERR_IO, "%s: header: short read", path);
    s->text[n] = '\0';
    return DK_OK;
}

static dk_status check_metadata(const st_file *s, const cJSON *md) {
    if (!cJSON_IsObject(md))
        return dk_fail(DK_ERR_FORMAT, "%s: __metadata__ is not a JSON object", s->path);
    for (const cJSON *kv = md->child; kv; kv = kv->next)
        if (!cJSON_IsString(kv))
            return dk_fail(DK_ERR_FORMAT, "%s: __metadata__ field %s is not a string", s->path,
                           kv->string);
    return DK_OK;
}

/* Parse and check one tensor entry: dtype, shape, data_offsets against its size and the
 * data section. */
static dk_status parse_entry(const st_file *s, const cJSON *x, entry *e) {
    const char *path = s->path, *name = x->string;
    e->name = name;
    if (!cJSON_IsObject(x))
        return dk_fail(DK_ERR_FORMAT, "%s: tensor %s: entry is not a JSON object", path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(x, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(x, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(x, "data_offsets");
    if (!cJSON_IsString(dt))
        return dk_fail(DK_ERR_FORMAT, "%s: tensor %s: dtype missing or not a string", path, name);
    if (strcmp(dt->valuestring, "F32") != 0)
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: tensor %s: dtype %s (only F32 is supported)", path,
                       name, dt->valuestring);
    int nd = cJSON_IsArray(sh) ? cJSON_GetArraySize(sh) : -1;
    if (nd < 0 || nd > FILE_MAX_DIMS)
        return dk_fail(DK_ERR_FORMAT, "%s: tensor %s: shape missing or over %d dims", path, name,
                       FILE_MAX_DIMS);
    e->ndim = nd;
    double numel = 1.0;
    for (int d = 0; d < nd; d++) {
        if (!json_uint(cJSON_GetArrayItem(sh, d), &e->shape[d]))
            return dk_fail(DK_ERR_FORMAT,
                           "%s: tensor %s: shape[%d] is not a non-negative "
                           "integer",
                           path, name, d);
        numel *= (double)e->shape[d];
    }
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 ||
        !json_uint(cJSON_GetArrayItem(of, 0), &e->begin) ||
        !json_uint(cJSON_GetArrayItem(of, 1), &e->end) || e->end < e->begin)
        return dk_fail(DK_ERR_FORMAT,
                       "%s: tensor %s: data_offsets is not [begin, end] with "
                       "0 <= begin <= end",
                       path, name);
    if (numel * 4.0 != (double)(e->end - e->begin))
        return dk_fail(DK_ERR_FORMAT,
                       "%s: tensor %s: data_offsets span %lld bytes, shape needs "
                       "%.0f",
                       path, name, (long long)(e->end - e->begin), numel * 4.0);
    if (e->end > s->data_size)
        return dk_fail(DK_ERR_FORMAT,
                       "%s: tensor %s: data_offsets [%lld, %lld] beyond the %lld "
                       "data bytes in the file (truncated?)",
                       path, name, (long long)e->begin, (long long)e->end, (long long)s->data_size);
    return DK_OK;
}

/* Parse the JSON, check __metadata__, and fill s->e with every tensor entry. */
static dk_status parse_header(st_file *s) {
    const char *end = NULL;
    const char *nul = memchr(s->text, '\0', (size_t)s->header_len);
    if (nul) /* cJSON would stop there and ignore the rest */
        return dk_fail(DK_ERR_FORMAT, "%s: header: NUL byte at %lld inside the JSON", s->path,
                       (long long)(nul - s->text));
    s->root = cJSON_ParseWithLengthOpts(s->text, (size_t)s->header_len + 1, &end, 1);
    if (!s->root)
        return dk_fail(DK_ERR_FORMAT, "%s: header: invalid JSON near byte %lld of %lld", s->path,
                       (long long)(end ? end - s->text : 0), (long long)s->header_len);
    if (!cJSON_IsObject(s->root))
        return dk_fail(DK_ERR_FORMAT, "%s: header: JSON is not an object", s->path);
    int count = cJSON_GetArraySize(s->root);
    if (!(s->e = calloc((size_t)count + 1, sizeof *s->e)))
        return dk_fail(DK_ERR_NOMEM, "%s: cannot allocate %d header entries", s->path, count);
    for (const cJSON *x = s->root->child; x; x = x->next) {
        dk_status st;
        if (strcmp(x->string, "__metadata__") == 0)
            st = check_metadata(s, x);
        else
            st = parse_entry(s, x, &s->e[s->n++]);
        if (st != DK_OK) return st;
    }
    return DK_OK;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static int by_begin(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Each name must appear once and the spans tile [0, data_size) exactly. Leaves s->e sorted
 * by name (for bsearch). */
static dk_status check_layout(st_file *s) {
    const char *path = s->path;
    qsort(s->e, (size_t)s->n, sizeof *s->e, by_name);
    for (int i = 1; i < s->n; i++)
        if (strcmp(s->e[i - 1].name, s->e[i].name) == 0)
            return dk_fail(DK_ERR_FORMAT, "%s: tensor %s: listed twice in the header", path,
                           s->e[i].name);
    qsort(s->e, (size_t)s->n, sizeof *s->e, by_begin);
    int64_t pos = 0;
    for (int i = 0; i < s->n; i++) {
        const entry *e = &s->e[i];
        if (e->begin != pos)
            return dk_fail(DK_ERR_FORMAT, "%s: tensor %s: data_offsets begin at %lld, %s at %lld",
                           path, e->name, (long long)e->begin,
                           e->begin < pos ? "overlapping the previous tensor ending"
                                          : "leaving a gap after the previous tensor ending",
                           (long long)pos);
        pos = e->end;
    }
    if (pos != s->data_size)
        return dk_fail(DK_ERR_FORMAT, "%s: data: %lld bytes after the last tensor", path,
                       (long long)(s->data_size - pos));
    qsort(s->e, (size_t)s->n, sizeof *s->e, by_name);
    return DK_OK;
}

/* Find each requested tensor, compare shapes, read its bytes; then refuse extras. */
static dk_status read_tensors(st_file *s, const dk_tensor_ref *t, int n, int allow_extra) {
    const char *path = s->path;
    for (int i = 0; i < n; i++) {
        DK_ASSERT(t[i].name && t[i].ndim >= 0 && t[i].ndim <= 5);
        entry key = {.name = t[i].name};
        entry *e = bsearch(&key, s->e, (size_t)s->n, sizeof *s->e, by_name);
        if (!e)
            return dk_fail(DK_ERR_FORMAT, "%s: tensor %s: missing from the file", path, t[i].name);
        int same = e->ndim == t[i].ndim;
        for (int d = 0; same && d < e->ndim; d++)
            same = e->shape[d] == t[i].shape[d];
        if (!same) {
            char fs[SHAPE_TEXT], ms[SHAPE_TEXT];
            shape_text(fs, sizeof fs, e->ndim, e->shape);
            shape_text(ms, sizeof ms, t[i].ndim, t[i].shape);
            return dk_fail(DK_ERR_FORMAT, "%s: %s: file has %s, model has %s", path, e->name, fs,
                           ms);
        }
        e->used = 1;
        size_t numel = (size_t)((e->end - e->begin) / 4);
        if (numel == 0 || !t[i].data) continue; /* no destination: a check only */
        if (fseeko(s->f, (off_t)(8 + s->header_len + e->begin), SEEK_SET) != 0 ||
            fread(t[i].data, sizeof(float), numel, s->f) != numel)
            return dk_fail(DK_ERR_IO, "%s: tensor %s: short read", path, e->name);
    }
    for (int i = 0; !allow_extra && i < s->n; i++)
        if (!s->e[i].used)
            return dk_fail(DK_ERR_FORMAT, "%s: tensor %s: in the file but not in the model", path,
                           s->e[i].name);
    return DK_OK;
}

static dk_status print_meta(const st_file *s, char **meta_json) {
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(s->root, "__metadata__");
    char *text = md ? cJSON_PrintUnformatted(md) : NULL;
    const char *src = md ? text : "{}";
    if (src) *meta_json = malloc(strlen(src) + 1);
    if (*meta_json) memcpy(*meta_json, src, strlen(src) + 1);
    cJSON_free(text);
    if (!*meta_json) return dk_fail(DK_ERR_NOMEM, "%s: cannot print __metadata__", s->path);
    return DK_OK;
}

dk_status dk_safetensors_read(const char *path, const dk_tensor_ref *t, int n, int allow_extra,
                              char **meta_json) {
    DK_ASSERT(path != NULL && (t != NULL || n == 0) && n >= 0);
    st_file s = {.path = path};
    if (meta_json) *meta_json = NULL;
    dk_status st;
    if ((st = read_header(&s)) != DK_OK || (st = parse_header(&s)) != DK_OK ||
        (st = check_layout(&s)) != DK_OK || (st = read_tensors(&s, t, n, allow_extra)) != DK_OK)
        goto out;
    if (meta_json) st = print_meta(&s, meta_json);
out:
    if (s.f) fclose(s.f);
    free(s.e);
    cJSON_Delete(s.root);
    free(s.text);
    return st;
}
