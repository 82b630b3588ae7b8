/* Temporary name + fsync + rename: the protocol every writer uses so an output appears
 * complete or not at all (see dakd/core.h); making and removing folders; reading a whole
 * file. */
/* realpath() is an X/Open function */
#define _XOPEN_SOURCE 700

#include "dakd/core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

dk_status dk_tmp_path_for(char *buf, size_t n, const char *path) {
    static atomic_uint counter;
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path + 1) : 0;
    const char *base = slash ? slash + 1 : path;
    int k = snprintf(buf, n, "%.*s.%s.%ld.%u.tmp", (int)dir_len, path, base, (long)getpid(),
                     atomic_fetch_add(&counter, 1u));
    if (k < 0 || (size_t)k >= n) return dk_fail(DK_ERR_ARG, "%s: path too long", path);
    return DK_OK;
}

/* fsync the directory holding `path` so the rename itself is durable. */
static void sync_parent_dir(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path == 0 ? 1 : slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

dk_status dk_commit_file(const char *tmp_path, const char *final_path) {
    int fd = open(tmp_path, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        unlink(tmp_path);
        return dk_fail(DK_ERR_IO, "%s: cannot sync temporary file %s: %s", final_path, tmp_path,
                       strerror(e));
    }
    close(fd);
    if (rename(tmp_path, final_path) != 0) {
        int e = errno;
        unlink(tmp_path);
        return dk_fail(DK_ERR_IO, "%s: cannot rename from %s: %s", final_path, tmp_path,
                       strerror(e));
    }
    sync_parent_dir(final_path);
    return DK_OK;
}

int dk_same_file_any(const char *out, const char *const *in, int n) {
    struct stat so, si;
    int exists = stat(out, &so) == 0; /* one stat of the output, then one per input */
    for (int i = 0; i < n; i++) {
        if (!in[i]) continue;
        if (strcmp(out, in[i]) == 0) return i;
        if (exists && stat(in[i], &si) == 0 && so.st_dev == si.st_dev && so.st_ino == si.st_ino)
            return i;
    }
    return -1;
}

int dk_same_file(const char *a, const char *b) { return dk_same_file_any(a, &b, 1) == 0; }

int dk_path_within(const char *path, const char *dir) {
    char rp[PATH_MAX], rd[PATH_MAX];
    if (!realpath(path, rp) || !realpath(dir, rd)) return 0;
    size_t k = strlen(rd);
    if (k == 1) return 1; /* "/" holds everything */
    return strncmp(rp, rd, k) == 0 && (rp[k] == '\0' || rp[k] == '/');
}

dk_status dk_mkdirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return dk_fail(DK_ERR_ARG, "%.64s...: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return dk_fail(DK_ERR_IO, "%s: cannot make folder: %s", buf, strerror(errno));
        *p = c;
        if (!c) break;
    }
    return DK_OK;
}

enum { TREE_PATH_MAX = 4096 };

/* Remove the entry named in buf (len characters) and, for a folder, what is below it, with
 * lstat (a link is removed, never followed). Names below are built in buf. 0, or -1 with
 * errno set and buf naming the entry that could not be removed. */
static int remove_below(char *buf, size_t len) {
    struct stat sb;
    if (lstat(buf, &sb) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(sb.st_mode)) return unlink(buf);
    DIR *d = opendir(buf);
    if (!d) return -1;
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t k = strlen(e->d_name);
        if (len + 1 + k >= TREE_PATH_MAX) {
            errno = ENAMETOOLONG;
            rc = -1;
            break;
        }
        buf[len] = '/';
        memcpy(buf + len + 1, e->d_name, k + 1);
        rc = remove_below(buf, len + 1 + k);
        if (rc == 0) buf[len] = '\0';
    }
    int e = errno;
    closedir(d);
    errno = e;
    return rc == 0 ? rmdir(buf) : rc;
}

/* 0, or -1 with `bad` naming what could not be removed and `e` the reason. */
static int remove_tree(const char *path, char bad[TREE_PATH_MAX], int *e) {
    size_t len = strlen(path);
    if (len >= TREE_PATH_MAX) {
        snprintf(bad, TREE_PATH_MAX, "%.64s...", path);
        *e = ENAMETOOLONG;
        return -1;
    }
    memcpy(bad, path, len + 1);
    int rc = remove_below(bad, len);
    *e = errno;
    return rc;
}

dk_status dk_remove_tree(const char *path) {
    char bad[TREE_PATH_MAX];
    int e;
    if (remove_tree(path, bad, &e) != 0)
        return dk_fail(DK_ERR_IO, "%s: cannot remove: %s", bad, strerror(e));
    return DK_OK;
}

void dk_discard_tree(const char *path) {
    char bad[TREE_PATH_MAX];
    int e;
    if (remove_tree(path, bad, &e) != 0)
        dk_log(DK_LOG_WARN, "%s: cannot remove: %s", bad, strerror(e));
}

dk_status dk_read_file(char **buf, size_t *len, const char *path) {
    *buf = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return dk_fail(DK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    dk_status st = DK_OK;
    char *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 65536;
            char *nb = realloc(b, cap);
            if (!nb) {
                st = dk_fail(DK_ERR_NOMEM, "%s: out of memory reading the file", path);
                break;
            }
            b = nb;
        }
        size_t got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (st == DK_OK && ferror(f))
        st = dk_fail(DK_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    fclose(f);
    if (st != DK_OK) {
        free(b);
        return st;
    }
    b[n] = '\0';
    *buf = b;
    if (len) *len = n;
    return DK_OK;
}
