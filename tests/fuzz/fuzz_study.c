/* A study file (`dakd run STUDY`): the input as x.ini through dk_study_load (the [study],
 * [phantoms], shared and [stage.*] sections, stage order, dependencies, seeds, each training
 * stage's effective config), then the reload identity (fz_config_round_trip) of the
 * effective config of every training run and of the shared sections. */
#include "fuzz_util.h"
#include "study_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fz_begin();
    const char *path = fz_write("x.ini", data, n);
    dk_study *s = NULL;
    if (dk_study_load(&s, path, NULL) != DK_OK) return 0;
    static dk_train_config c; /* large: not on the stack */
    for (int i = -1; i < s->nstages; i++) {
        const study_stage *st = i < 0 ? NULL : &s->stages[i];
        if (st && st->f.kind != STAGE_TRAIN) continue;
        /* dk_study_load validated each of these already */
        fz_check(dk__study_train_config(&c, s, st) == DK_OK, "a loaded study's config fails");
        fz_config_round_trip(&c);
    }
    dk_study_free(s);
    return 0;
}
