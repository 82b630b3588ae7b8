/* dakd adapt — a model's batch-norm statistics re-estimated on target images (AdaBN). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dakd/train.h"

static const char *adapt_help =
    "usage: dakd adapt --model M.safetensors (--cases CSV [--where column=value]... | IMAGE...)\n"
    "                  --out NEW.safetensors [--batches N] [--batch-size B] [--seed S]\n"
    "                  [--centre-in-mask]\n\n"
    "AdaBN (Li et al. 2016), the cheapest domain adaptation: re-estimate the batch-norm\n"
    "running statistics of a model exported by 'dakd train' or 'dakd distill' on images of\n"
    "the target domain, and write the adapted model to a new file. Weights do not change and\n"
    "no label is read. Images are preprocessed exactly as 'dakd predict' prepares them (the\n"
    "model's dakd.data.* metadata; the case list's mask where the model was trained with\n"
    "masks, required for a model trained with mask_extent); patches of the model's training\n"
    "patch size are drawn from them (a case uniformly, then a position uniformly) without\n"
    "augmentation, and each batch goes through the network in training mode, so every\n"
    "running mean and variance moves by the layer's momentum 0.1: after 50 batches the old\n"
    "statistics keep a weight of 0.9^50 = 0.5 %. With the batch size and seed of a\n"
    "distillation run and its target cases, the result equals what [distill] target_bn\n"
    "gives. The new file carries every metadata key of the model plus dakd.adabn (patches,\n"
    "batches, images, their source, seed); it is written atomically and may not be the\n"
    "model itself. A model without batch norm (instance norm) is refused.\n\n"
    "  --model M         the model .safetensors to adapt\n"
    "  --cases CSV       case list (case, image, optional mask, ...)\n"
    "  --where c=v       only rows whose column c equals v; repeat to combine\n"
    "                    (e.g. --where dataset=chasedb1 --where split=train)\n"
    "  IMAGE...          image files (any format dakd reads; both forms may be combined)\n"
    "  --out NEW         the adapted model file\n"
    "  --batches N       training-mode forwards (default 50)\n"
    "  --batch-size B    patches per forward (default 8, as [data] batch_size)\n"
    "  --seed S          seed of the patch draws (default 0; a run's [train] seed to match\n"
    "                    its target_bn)\n"
    "  --centre-in-mask  centre each patch on a voxel of the image's mask (as [data]\n"
    "                    centre_in_mask)\n"
    "Progress over the batches on stderr, as every long command's (dakd --help).\n";

typedef struct {
    dk_adapt_opts o;
    const char **inputs; /* NULL-terminated */
    const char **where;  /* NULL-terminated */
    int n_inputs, n_where;
} adapt_args;

static int parse_flag(void *ctx, const char *k) {
    adapt_args *a = ctx;
    if (strcmp(k, "--centre-in-mask") != 0) return 0;
    a->o.centre_in_mask = 1;
    return 1;
}

static int parse_value(void *ctx, const char *k, const char *v) {
    adapt_args *a = ctx;
    long long x;
    if (strcmp(k, "--model") == 0)
        a->o.model = v;
    else if (strcmp(k, "--cases") == 0)
        a->o.cases_csv = v;
    else if (strcmp(k, "--out") == 0)
        a->o.out = v;
    else if (strcmp(k, "--where") == 0) {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v) return -1;
        a->where[a->n_where++] = v;
    } else if (strcmp(k, "--batches") == 0) {
        if (dk_cli_parse_ints(v, &x, 1) != 1 || x < 1 || x > 1000000) return -1;
        a->o.batches = x;
    } else if (strcmp(k, "--batch-size") == 0) {
        if (dk_cli_parse_ints(v, &x, 1) != 1 || x < 1 || x > 4096) return -1;
        a->o.batch_size = (int)x;
    } else if (strcmp(k, "--seed") == 0) {
        if (dk_cli_parse_ints(v, &x, 1) != 1 || x < 0) return -1;
        a->o.seed = (uint64_t)x;
    } else
        return -2;
    return 0;
}

static int parse(int argc, char **argv, adapt_args *a) {
    const char *cmd = argv[0];
    dk_cli_options opt = {a, parse_flag, parse_value, a->inputs, 0};
    int rc = dk_cli_parse_options(argc, argv, &opt);
    a->n_inputs = opt.n_inputs;
    if (rc || (rc = dk_cli_check_model_inputs(cmd, a->o.model, a->o.out, "NEW.safetensors",
                                              a->o.cases_csv, a->n_inputs, a->n_where)))
        return rc;
    a->o.inputs = a->n_inputs ? a->inputs : NULL;
    a->o.where = a->n_where ? a->where : NULL;
    return 0;
}

int dk_cmd_adapt(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (dk_cli_is_help(argv[i])) {
            fputs(adapt_help, stdout);
            return 0;
        }
    adapt_args a;
    memset(&a, 0, sizeof a);
    dk_adapt_defaults(&a.o);
    a.inputs = calloc((size_t)argc + 1, sizeof *a.inputs);
    a.where = calloc((size_t)argc + 1, sizeof *a.where);
    int rc = !a.inputs || !a.where ? dk_cli_report(argv[0], dk_fail(DK_ERR_NOMEM, "no memory"))
                                   : parse(argc, argv, &a);
    if (rc == 0) {
        dk_status st = dk_adapt_run(&a.o);
        if (st == DK_OK)
            printf("adapt: %s written (batch-norm statistics from %lld patches)\n", a.o.out,
                   (long long)(a.o.batches * a.o.batch_size));
        rc = dk_cli_report(argv[0], st);
    }
    free(a.inputs);
    free(a.where);
    return rc;
}
