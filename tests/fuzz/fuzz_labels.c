/* A labels file (`--label-names`, a 3D Slicer colour table) through dk_labels_read, with
 * the largest value allowed picked by the mode byte (3: a 4-class model; 255; 65535), then
 * every entry looked up as predict's DICOM SEG and the eval reports look names up. */
#include <string.h>

#include "dakd/volume.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static const int max_values[] = {3, 255, 65535};
    int max = max_values[fz_take_mode(&data, &n, 3)];
    fz_begin();
    const char *path = fz_write("names.txt", data, n);
    dk_label_table t;
    if (dk_labels_read(&t, path, max) != DK_OK) {
        fz_check(t.items == NULL && t.n == 0, "a failed read left a table");
        return 0;
    }
    for (int i = 0; i < t.n; i++) {
        const dk_label_info *e = &t.items[i];
        fz_check(e->value >= 0 && e->value <= max, "a value outside 0..max was kept");
        size_t len = strnlen(e->name, sizeof e->name);
        fz_check(len > 0 && len < sizeof e->name, "an empty or unterminated name");
        for (int j = 0; j < i; j++)
            fz_check(t.items[j].value != e->value, "a duplicate value was kept");
        dk_label_info g = dk_labels_get(&t, e->value);
        fz_check(g.value == e->value && strcmp(g.name, e->name) == 0 &&
                     memcmp(g.rgb, e->rgb, 3) == 0,
                 "dk_labels_get does not give the entry read");
    }
    dk_label_info d = dk_labels_get(&t, max + 1); /* not listed: "label N" */
    fz_check(strncmp(d.name, "label ", 6) == 0, "an unlisted value is not named 'label N'");
    dk_labels_free(&t);
    return 0;
}
