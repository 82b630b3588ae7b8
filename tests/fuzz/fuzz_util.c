/* The harnesses' shared part (fuzz_util.h). */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */
#include "fuzz_util.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dakd/core.h"
#include "dakd/nn.h"
#include "dicom_internal.h"

enum { PATHS = 16, PATH_LEN = 4096 };

static char root[PATH_LEN], work[PATH_LEN];
static char paths[PATHS][PATH_LEN]; /* the paths handed out since fz_begin */
static int npaths;

void fz_check(int ok, const char *what) {
    if (ok) return;
    fprintf(stderr, "fuzz harness: %s\n", what);
    abort();
}

static void quiet(dk_log_level level, const char *msg, void *user) {
    (void)level, (void)msg, (void)user;
}

static int remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void remove_tree(const char *dir) {
    if (dir[0]) nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_root(void) { remove_tree(root); }

static void setup(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/dakd-fuzz-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    fz_check(mkdtemp(root) != NULL, "cannot make a temporary folder");
    snprintf(work, sizeof work, "%s/w", root);
    atexit(remove_root);
    dk_log_set_sink(quiet, NULL, DK_LOG_ERROR);
    dk_set_threads(1);
}

const char *fz_root(void) {
    if (!root[0]) setup();
    return root;
}

const char *fz_begin(void) {
    fz_root();
    remove_tree(work);
    fz_check(mkdir(work, 0700) == 0, "cannot make the work folder");
    npaths = 0;
    dk_clear_error();
    return work;
}

const char *fz_path(const char *name) {
    fz_check(npaths < PATHS, "too many paths for one input");
    char *p = paths[npaths++];
    snprintf(p, PATH_LEN, "%s/%s", work, name);
    return p;
}

const char *fz_write(const char *name, const void *data, size_t n) {
    const char *p = fz_path(name);
    for (const char *slash = strchr(name, '/'); slash; slash = strchr(slash + 1, '/')) {
        char dir[PATH_LEN];
        snprintf(dir, sizeof dir, "%s/%.*s", work, (int)(slash - name), name);
        fz_check(mkdir(dir, 0700) == 0 || errno == EEXIST, "cannot make a sub-folder");
    }
    FILE *f = fopen(p, "wb");
    fz_check(f != NULL, "cannot create an input file");
    fz_check((n == 0 || fwrite(data, 1, n, f) == n) && fclose(f) == 0,
             "cannot write an input file");
    return p;
}

int fz_take_mode(const uint8_t **data, size_t *n, int modes) {
    if (*n == 0) return 0;
    int m = (*data)[0] % modes;
    (*data)++, (*n)--;
    return m;
}

void fz_split(const uint8_t *data, size_t n, const uint8_t **a, size_t *na, const uint8_t **b,
              size_t *nb) {
    size_t k = n >= 2 ? (size_t)data[0] | (size_t)data[1] << 8 : 0;
    size_t skip = n >= 2 ? 2 : n;
    data += skip, n -= skip;
    if (k > n) k = n;
    *a = data, *na = k;
    *b = data + k, *nb = n - k;
}

const char *fz_write_pair(const char *first, const char *second, const uint8_t *data,
                          size_t n) {
    const uint8_t *a, *b;
    size_t na, nb;
    fz_split(data, n, &a, &na, &b, &nb);
    const char *p = fz_write(first, a, na);
    fz_write(second, b, nb);
    return p;
}

void fz_read_volume(const char *path) {
    dk_volume v;
    if (dk_volume_read_header(&v, path) == DK_OK) fz_use_volume(&v);
    dk_volume_free(&v);
    if (dk_volume_read(&v, path) == DK_OK) fz_use_volume(&v);
    dk_volume_free(&v);
}

void fz_use_volume(const dk_volume *v) {
    double m[4][4];
    dk_geometry_to_nifti_affine(&v->geom, m);
    char code[4];
    dk_geometry_orientation_code(&v->geom, code);
    volatile double keep = m[0][0] + code[0]; /* the reads may not be dropped */
    if (!v->data) return;                     /* a header read: no statistics (dakd info) */
    dk_volume_stats s;
    dk_volume_compute_stats(v, &s);
    double sum = 0;
    const int64_t n = dk_volume_numel(v);
    for (int64_t i = 0; i < n; i++) sum += dk_volume_get(v, i);
    keep += sum + s.mean;
    (void)keep;
}

void fz_dicom_setup(void) {
    const char *child = getenv("DAKD_FUZZ_DICOM_CHILD");
    dk_dcm_set_in_process(!(child && strcmp(child, "1") == 0));
}

void fz_config_round_trip(const dk_train_config *c) {
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/effective.ini", work);
    fz_check(dk_train_config_write(c, path) == DK_OK, "cannot write the effective config");
    static dk_train_config back; /* large: not on the stack */
    dk_train_config_defaults(&back);
    if (dk_train_config_load(&back, path) != DK_OK) {
        fprintf(stderr, "fuzz harness: the effective config does not load: %s\n",
                dk_last_error());
        abort();
    }
    size_t n;
    const dk_cfg_field *t = dk_train_config_table(&n);
    for (size_t i = 0; i < n; i++) {
        char a[1024], b[1024];
        dk_cfg_format(a, sizeof a, c, &t[i]);
        dk_cfg_format(b, sizeof b, &back, &t[i]);
        if (strcmp(a, b) == 0) continue;
        fprintf(stderr, "fuzz harness: [%s] %s = '%s' is read back as '%s'\n", t[i].section,
                t[i].key, a, b);
        abort();
    }
}
