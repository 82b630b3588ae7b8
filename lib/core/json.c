/* JSON output shared by every writer of .json files (reports, manifests, summaries). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dakd/core.h"

dk_status dk_json_write_file(const cJSON *j, const char *path) {
    char tmp[4200];
    dk_status st = dk_tmp_path_for(tmp, sizeof tmp, path);
    if (st != DK_OK) return st;
    char *text = cJSON_Print(j);
    if (!text) return dk_fail(DK_ERR_NOMEM, "%s: out of memory printing JSON", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        int e = errno;
        cJSON_free(text);
        return dk_fail(DK_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    int bad = fputs(text, f) < 0 || fputc('\n', f) == EOF;
    bad |= fclose(f) != 0;
    cJSON_free(text);
    if (bad) {
        remove(tmp);
        return dk_fail(DK_ERR_IO, "%s: write failed", path);
    }
    return dk_commit_file(tmp, path);
}

void dk_json_add_number(cJSON *o, const char *key, double x) {
    if (isfinite(x)) cJSON_AddNumberToObject(o, key, x);
    else cJSON_AddNullToObject(o, key);
}
