/* dakd distill — the method: distil a source teacher into a student for the target domain.
 * Option parsing and the run are shared with dakd train (cmd_train.c). */
#include "cli.h"

int dk_cmd_distill(int argc, char **argv) { return dk_cli_train_run(argc, argv, 1); }
