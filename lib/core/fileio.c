/* Temporary name + fsync + rename: the protocol every writer uses so an output appears
 * complete or not at all (see dakd/core.h). */
#include "dakd/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
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
