/*
 * The study's bookkeeping: SHA-256 of files and texts (OpenSSL libcrypto), reading JSON
 * records, and <run_dir>/manifest.json (versions, machine, stages).
 */
#include "study_internal.h"

#include <cJSON.h>
#include <nifti2_io.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <png.h>
#include <zlib.h>

#include "dakd/nn.h"

#include <errno.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef DAKD_INIH_VERSION
#define DAKD_INIH_VERSION "unknown"
#endif

/* ---------------------------------------------------------------- hashing */

static void to_hex(char hex[65], const unsigned char *d) {
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

dk_status dk__study_sha256_text(char hex[65], const char *text, size_t n) {
    unsigned char d[32];
    unsigned int len = 0;
    if (!EVP_Digest(text, n, d, &len, EVP_sha256(), NULL) || len != 32)
        return dk_fail(DK_ERR_INTERNAL, "SHA-256: OpenSSL EVP_Digest failed");
    to_hex(hex, d);
    return DK_OK;
}

dk_status dk_sha256_file(char hex[65], const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return dk_fail(DK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    dk_status st = DK_OK;
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
        st = dk_fail(DK_ERR_INTERNAL, "%s: OpenSSL SHA-256 init failed", path);
    unsigned char buf[16384]; /* on the stack: threads may hash files at the same time */
    size_t got;
    while (st == DK_OK && (got = fread(buf, 1, sizeof buf, f)) > 0)
        if (!EVP_DigestUpdate(ctx, buf, got))
            st = dk_fail(DK_ERR_INTERNAL, "%s: OpenSSL SHA-256 update failed", path);
    if (st == DK_OK && ferror(f)) st = dk_fail(DK_ERR_IO, "%s: read error", path);
    unsigned char d[32];
    unsigned int len = 0;
    if (st == DK_OK && (!EVP_DigestFinal_ex(ctx, d, &len) || len != 32))
        st = dk_fail(DK_ERR_INTERNAL, "%s: OpenSSL SHA-256 final failed", path);
    if (st == DK_OK) to_hex(hex, d);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    return st;
}

/* Files are hashed once per process; the cache key is the path plus size and mtime, so a
 * file rewritten by an earlier stage of the same run is hashed again. */
dk_status dk__study_hash_cached(char hex[65], dk_study *s, const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return dk_fail(DK_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    char id[STUDY_PATH_MAX + 64];
    snprintf(id, sizeof id, "%s|%lld|%lld.%09ld", path, (long long)sb.st_size,
             (long long)sb.st_mtim.tv_sec, (long)sb.st_mtim.tv_nsec);
    const cJSON *hit = cJSON_GetObjectItemCaseSensitive(s->hash_cache, id);
    if (cJSON_IsString(hit)) {
        snprintf(hex, 65, "%s", hit->valuestring);
        return DK_OK;
    }
    dk_status st = dk_sha256_file(hex, path);
    if (st == DK_OK) cJSON_AddStringToObject(s->hash_cache, id, hex);
    return st;
}

/* ---------------------------------------------------------------- JSON records */

cJSON *dk__study_read_json(const char *path) {
    char *buf = NULL;
    if (dk_read_file(&buf, NULL, path) != DK_OK) return NULL;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    return j;
}

/* ---------------------------------------------------------------- versions and machine */

/* What fn() prints to stdout, run in a child process whose stdout is a pipe, into buf (""
 * when it cannot run). This process's stdout is not touched. */
static void child_stdout(char *buf, size_t n, void (*fn)(void)) {
    buf[0] = '\0';
    int fd[2];
    if (pipe(fd) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        __fpurge(stdout); /* drop the child's copy of this process's unwritten output */
        if (dup2(fd[1], STDOUT_FILENO) >= 0) {
            fn();
            fflush(stdout);
        }
        _exit(0);
    }
    close(fd[1]);
    size_t len = 0;
    while (pid > 0 && len + 1 < n) {
        ssize_t k = read(fd[0], buf + len, n - 1 - len);
        if (k > 0) len += (size_t)k;
        else if (k == 0 || errno != EINTR) break;
    }
    buf[len] = '\0';
    close(fd[0]);
    while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

/* nifticlib has no version getter; nifti_disp_lib_version() prints its version line to
 * stdout. Read once per process. */
static void nifti_version(char *buf, size_t n) {
    static char cached[128];
    if (!cached[0]) {
        child_stdout(cached, sizeof cached, nifti_disp_lib_version);
        cached[strcspn(cached, "\n")] = '\0';
        if (!cached[0]) snprintf(cached, sizeof cached, "unknown");
    }
    snprintf(buf, n, "%s", cached);
}

static cJSON *libraries(void) {
    cJSON *j = cJSON_CreateObject();
    char buf[256];
    cJSON_AddStringToObject(j, "openblas_kernel", dk_blas_kernel());
    cJSON_AddStringToObject(j, "openblas_config", dk_blas_config());
    cJSON_AddStringToObject(j, "convolution", dk_conv_path());
#ifdef DAKD_ITK_VERSION
    cJSON_AddStringToObject(j, "itk", DAKD_ITK_VERSION);
#else
    cJSON_AddStringToObject(j, "itk", "built without ITK");
#endif
    nifti_version(buf, sizeof buf);
    cJSON_AddStringToObject(j, "nifticlib", buf);
    cJSON_AddStringToObject(j, "libpng", png_get_libpng_ver(NULL));
    cJSON_AddStringToObject(j, "zlib", zlibVersion());
    cJSON_AddStringToObject(j, "cjson", cJSON_Version());
    cJSON_AddStringToObject(j, "inih", DAKD_INIH_VERSION);
    cJSON_AddStringToObject(j, "openssl", OpenSSL_version(OPENSSL_VERSION));
    return j;
}

static void cpu_model(char *buf, size_t n) {
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            const char *c = strchr(line, ':');
            if (c) snprintf(buf, n, "%s", c + 2);
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
    fclose(f);
}

static cJSON *machine(void) {
    cJSON *j = cJSON_CreateObject();
    struct utsname u;
    char buf[512];
    if (uname(&u) == 0) {
        snprintf(buf, sizeof buf, "%s %s %s %s", u.sysname, u.release, u.version, u.machine);
        cJSON_AddStringToObject(j, "uname", buf);
        cJSON_AddStringToObject(j, "hostname", u.nodename);
    }
    cpu_model(buf, sizeof buf);
    cJSON_AddStringToObject(j, "cpu", buf);
    cJSON_AddNumberToObject(j, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    double mem = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    cJSON_AddNumberToObject(j, "memory_bytes", mem);
    cJSON_AddNumberToObject(j, "threads", dk_get_threads());
    return j;
}

/* "dakd 0.1.0 (commit abcdef123456)" → the commit. */
static void commit_of(char *buf, size_t n, const char *version) {
    const char *c = strstr(version, "commit ");
    snprintf(buf, n, "%s", c ? c + 7 : "unknown");
    buf[strcspn(buf, ")")] = '\0';
}

static const char *status_of(const study_stage *st) {
    if (st->ran) return "ran";
    return st->record ? "up to date" : "pending";
}

static cJSON *stage_entry(const study_stage *st) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", st->name);
    if (st->seeded) cJSON_AddStringToObject(j, "folder", st->dir);
    cJSON_AddStringToObject(j, "kind", dk__study_kind_name(st->f.kind));
    cJSON_AddStringToObject(j, "status", status_of(st));
    cJSON_AddStringToObject(j, "key", st->key);
    if (st->record) {
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(st->record, "seconds");
        if (cJSON_IsNumber(sec)) cJSON_AddNumberToObject(j, "seconds", sec->valuedouble);
        const cJSON *seed = cJSON_GetObjectItemCaseSensitive(st->record, "seed");
        if (cJSON_IsNumber(seed)) cJSON_AddNumberToObject(j, "seed", seed->valuedouble);
    }
    if (st->config_text) cJSON_AddStringToObject(j, "config", st->config_text);
    if (st->inputs) cJSON_AddItemToObject(j, "inputs", cJSON_Duplicate(st->inputs, 1));
    return j;
}

dk_status dk__study_write_manifest(dk_study *s) {
    cJSON *m = cJSON_CreateObject();
    char buf[256];
    cJSON *dakd = cJSON_AddObjectToObject(m, "dakd");
    cJSON_AddStringToObject(dakd, "version", dk_version_string());
    commit_of(buf, sizeof buf, dk_version_string());
    cJSON_AddStringToObject(dakd, "commit", buf);
    cJSON_AddItemToObject(m, "libraries", libraries());
    cJSON_AddItemToObject(m, "machine", machine());
    cJSON *study = cJSON_AddObjectToObject(m, "study");
    cJSON_AddStringToObject(study, "name", s->set.name);
    cJSON_AddStringToObject(study, "file", s->path);
    cJSON_AddStringToObject(study, "file_sha256", s->file_sha);
    cJSON_AddStringToObject(study, "run_dir", s->set.run_dir);
    cJSON_AddNumberToObject(study, "seed", (double)s->set.seed);
    cJSON_AddNumberToObject(study, "threads", s->set.threads);
    cJSON_AddNumberToObject(study, "jobs", s->set.jobs);
    cJSON *sets = cJSON_AddArrayToObject(study, "shared_settings");
    for (int i = 0; i < s->nshared; i++)
        cJSON_AddItemToArray(sets, cJSON_CreateString(s->shared[i].text));
    cJSON *stages = cJSON_AddArrayToObject(m, "stages");
    for (int i = 0; i < s->nstages; i++) cJSON_AddItemToArray(stages, stage_entry(&s->stages[i]));
    char path[STUDY_PATH_MAX];
    snprintf(path, sizeof path, "%s/manifest.json", s->set.run_dir);
    dk_status st = dk_json_write_file(m, path);
    cJSON_Delete(m);
    return st;
}
