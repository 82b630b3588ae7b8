/*
 * CUnit suite for the generic config machinery (lib/core/config.c) on a small struct:
 * defaults, loading, errors that name file:line and [section] key, --set, write -> load
 * round trip, and the help text.
 */
#include "dakd/core.h"
#include "test_util.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int epochs;
    int64_t steps;
    double lr;
    float slope;
    int flag;
    char name[16];
    int kind;
} toy;

static const char *const kinds[] = {"mmd", "coral", "none", NULL};

static const dk_cfg_field fields[] = {
    {"train", "epochs", DK_CFG_INT, offsetof(toy, epochs), 0, 1, 100, "10", NULL, "epochs"},
    {"train", "steps", DK_CFG_INT64, offsetof(toy, steps), 0, 0, 1e12, "250", NULL, "steps"},
    {"train", "lr_base", DK_CFG_DOUBLE, offsetof(toy, lr), 0, 0, 1, "0.01", NULL, "base lr"},
    {"model", "slope", DK_CFG_FLOAT, offsetof(toy, slope), 0, 0, 1, "0.01", NULL, "leaky"},
    {"model", "flag", DK_CFG_BOOL, offsetof(toy, flag), 0, 0, 1, "true", NULL, "a switch"},
    {"model", "name", DK_CFG_STRING, offsetof(toy, name), sizeof(((toy *)0)->name), 0, 0,
     "unet", NULL, "a name"},
    {"model", "kind", DK_CFG_ENUM, offsetof(toy, kind), 0, 0, 0, "coral", kinds, "a kind"},
};
enum { NF = sizeof fields / sizeof fields[0] };

static void toy_defaults(toy *t) {
    memset(t, 0, sizeof *t);
    dk_cfg_defaults(t, fields, NF);
}

/* Write `text` into a scratch file and return its path. */
static const char *put(const char *name, const char *text) {
    const char *p = dk_test_path(dk_test_tmpdir(), name);
    FILE *f = fopen(p, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
    return p;
}

/* Load `text` from a file and expect failure `st` with a message containing each of the
 * (up to 3) fragments; "@" in a fragment stands for the file's path. */
static void expect_fail(const char *text, dk_status st, const char *a, const char *b,
                        const char *c) {
    toy t;
    toy_defaults(&t);
    const char *p = put("bad.ini", text);
    CU_ASSERT_EQUAL(dk_cfg_load(&t, fields, NF, p), st);
    const char *msg = dk_last_error();
    const char *frags[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        if (!frags[i]) continue;
        char want[1024];
        if (frags[i][0] == '@') snprintf(want, sizeof want, "%s%s", p, frags[i] + 1);
        else snprintf(want, sizeof want, "%s", frags[i]);
        if (!strstr(msg, want)) printf("\n  message '%s' lacks '%s'\n", msg, want);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
    }
}

static void test_defaults(void) {
    toy t;
    toy_defaults(&t);
    CU_ASSERT_EQUAL(t.epochs, 10);
    CU_ASSERT_EQUAL(t.steps, 250);
    CU_ASSERT_EQUAL(t.lr, 0.01);
    CU_ASSERT_EQUAL(t.slope, 0.01f);
    CU_ASSERT_EQUAL(t.flag, 1);
    CU_ASSERT_STRING_EQUAL(t.name, "unet");
    CU_ASSERT_EQUAL(t.kind, 1);
}

static void test_load(void) {
    toy t;
    toy_defaults(&t);
    const char *p = put("ok.ini", "; a comment\n# another\n[train]\nepochs = 42\n"
                                  "lr_base = 1e-3 ; inline comment\n\n[model]\n"
                                  "flag = OFF\nname = my net\nkind = none\n");
    CU_ASSERT_EQUAL_FATAL(dk_cfg_load(&t, fields, NF, p), DK_OK);
    CU_ASSERT_EQUAL(t.epochs, 42);
    CU_ASSERT_EQUAL(t.steps, 250); /* not in the file: kept */
    CU_ASSERT_EQUAL(t.lr, 1e-3);
    CU_ASSERT_EQUAL(t.flag, 0);
    CU_ASSERT_STRING_EQUAL(t.name, "my net");
    CU_ASSERT_EQUAL(t.kind, 2);
    /* the string form counts lines the same way */
    CU_ASSERT_EQUAL(dk_cfg_load_string(&t, fields, NF, "[train]\n\nepochs = 7\n", "s"), DK_OK);
    CU_ASSERT_EQUAL(t.epochs, 7);
    CU_ASSERT_EQUAL(dk_cfg_load_string(&t, fields, NF, "[train]\n\nepoch = 7\n", "s"),
                    DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "s:3: unknown key [train] epoch"));
}

static void test_unknown_key(void) {
    expect_fail("[train]\nepochs = 5\n; comment\n\nlr = 0.1\n", DK_ERR_ARG,
                "@:5: unknown key [train] lr", "did you mean [train] lr_base?", NULL);
    expect_fail("[model]\nname = x\n[optim]\nlr = 0.1\n", DK_ERR_ARG,
                "@:4: unknown key [optim] lr", NULL, NULL);
    expect_fail("epochs = 3\n", DK_ERR_ARG, "@:1: unknown key [] epochs", NULL, NULL);
}

static void test_range(void) {
    expect_fail("[train]\n\nepochs = 0\n", DK_ERR_ARG, "@:3: [train] epochs = 0",
                "out of range [1, 100]", NULL);
    expect_fail("[train]\nlr_base = 2.5\n", DK_ERR_ARG, "@:2: [train] lr_base = 2.5",
                "[0, 1]", NULL);
    expect_fail("[train]\nepochs = 99999999999\n", DK_ERR_ARG, "@:2:", "out of range", NULL);
    expect_fail("[model]\nslope = -0.5\n", DK_ERR_ARG, "@:2: [model] slope", "[0, 1]", NULL);
}

static void test_bad_values(void) {
    expect_fail("[model]\nflag = maybe\n", DK_ERR_ARG, "@:2: [model] flag = 'maybe'",
                "true/false", NULL);
    expect_fail("[model]\nkind = cka\n", DK_ERR_ARG, "@:2: [model] kind = 'cka'",
                "mmd|coral|none", NULL);
    expect_fail("[train]\nepochs = 5.5\n", DK_ERR_ARG, "@:2: [train] epochs = '5.5'",
                "not an integer", NULL);
    expect_fail("[train]\nlr_base = 0.1x\n", DK_ERR_ARG, "@:2:", "not a finite number", NULL);
    expect_fail("[train]\nlr_base = nan\n", DK_ERR_ARG, "@:2:", "not a finite number", NULL);
    expect_fail("[train]\nepochs =\n", DK_ERR_ARG, "@:2:", "not an integer", NULL);
    expect_fail("[model]\nname = a-name-longer-than-15\n", DK_ERR_ARG, "@:2: [model] name",
                "at most 15", NULL);
}

static void test_file_errors(void) {
    expect_fail("[train]\nepochs = 5\n\nepochs = 6\n", DK_ERR_ARG,
                "@:4: duplicate key [train] epochs", "first set on line 2", NULL);
    expect_fail("[train]\nepochs = 5\nthis line is wrong\nepochs = 200\n", DK_ERR_ARG,
                "@:3: syntax error", NULL, NULL);
    expect_fail("[train\nepochs = 5\n", DK_ERR_ARG, "@:1: syntax error", NULL, NULL);
    char longline[400];
    memset(longline, 'a', sizeof longline);
    memcpy(longline, "[model]\nname = ", 15);
    memcpy(longline + sizeof longline - 2, "\n", 2);
    expect_fail(longline, DK_ERR_ARG, "@:2: line longer than", NULL, NULL);
    toy t;
    toy_defaults(&t);
    CU_ASSERT_EQUAL(dk_cfg_load(&t, fields, NF, "/nonexistent/x.ini"), DK_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "/nonexistent/x.ini"));
}

static void test_set(void) {
    toy t;
    toy_defaults(&t);
    CU_ASSERT_EQUAL(dk_cfg_set(&t, fields, NF, "train.epochs=77"), DK_OK);
    CU_ASSERT_EQUAL(t.epochs, 77);
    CU_ASSERT_EQUAL(dk_cfg_set(&t, fields, NF, " model.name = hello world "), DK_OK);
    CU_ASSERT_STRING_EQUAL(t.name, "hello world");
    CU_ASSERT_EQUAL(dk_cfg_set(&t, fields, NF, "model.kind=mmd"), DK_OK);
    CU_ASSERT_EQUAL(t.kind, 0);
    toy before = t;
    CU_ASSERT_EQUAL(dk_cfg_set(&t, fields, NF, "train.lr=0.1"), DK_ERR_ARG);
    CU_ASSERT_STRING_EQUAL(dk_last_error(),
                           "override: unknown key train.lr; did you mean train.lr_base?");
    CU_ASSERT_EQUAL(dk_cfg_set(&t, fields, NF, "train.epoks=3"), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "did you mean train.epochs?"));
    CU_ASSERT_EQUAL(dk_cfg_set(&t, fields, NF, "train.epochs=1000"), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "override: [train] epochs = 1000 is out of "
                                                   "range [1, 100]"));
    CU_ASSERT_EQUAL(dk_cfg_set(&t, fields, NF, "model.flag=2"), DK_ERR_ARG);
    CU_ASSERT_EQUAL(dk_cfg_set(&t, fields, NF, "model.name=a ; b"), DK_ERR_ARG);
    CU_ASSERT_EQUAL(dk_cfg_set(&t, fields, NF, "epochs=3"), DK_ERR_ARG);
    CU_ASSERT_STRING_EQUAL(dk_last_error(), "override 'epochs=3': expected section.key=value");
    CU_ASSERT_EQUAL(dk_cfg_set(&t, fields, NF, "train.epochs"), DK_ERR_ARG);
    CU_ASSERT_EQUAL(memcmp(&t, &before, sizeof t), 0); /* failures changed nothing */
}

static void test_round_trip(void) {
    toy a, b;
    toy_defaults(&a);
    toy_defaults(&b);
    a.epochs = 3;
    a.steps = 123456789012LL;
    a.lr = 0.1 + 0.2; /* needs 17 digits */
    a.slope = 0.3f;
    a.flag = 0;
    a.kind = 2;
    CU_ASSERT_EQUAL(dk_cfg_set(&a, fields, NF, "model.name=x;y z"), DK_OK);
    const char *p = dk_test_path(dk_test_tmpdir(), "effective.ini");
    CU_ASSERT_EQUAL_FATAL(dk_cfg_write(&a, fields, NF, p), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_cfg_load(&b, fields, NF, p), DK_OK);
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
    CU_ASSERT_EQUAL(b.lr, 0.1 + 0.2);
    char buf[64];
    dk_cfg_format(buf, sizeof buf, &a, &fields[2]);
    CU_ASSERT_STRING_EQUAL(buf, "0.30000000000000004");
    dk_cfg_format(buf, sizeof buf, &a, &fields[3]);
    CU_ASSERT_STRING_EQUAL(buf, "0.3");
    /* every key is written, with its help as a comment */
    char out[4096];
    CU_ASSERT_EQUAL(dk_test_sh(out, sizeof out, "cat '%s'", p), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[train]\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nsteps = 123456789012\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "; base lr\n; (double [0, 1], default 0.01)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nkind = none\n"));
    CU_ASSERT_EQUAL(dk_cfg_write(&a, fields, NF, "/nonexistent/dir/e.ini"), DK_ERR_IO);
}

/* A value starting with ';' would be written "key = ;x" and read back empty (an inline
 * comment), so it is refused naming file:line and the key; '#' is no inline comment and
 * round-trips. */
static void test_semicolon_value(void) {
    expect_fail("[model]\nname=;\n", DK_ERR_ARG, "@:2: [model] name = ';'", "';' at its start",
                NULL);
    expect_fail("[model]\nflag = on\nname=;x y\n", DK_ERR_ARG, "@:3: [model] name = ';x y'", NULL,
                NULL);
    toy a, b;
    toy_defaults(&a);
    CU_ASSERT_EQUAL(dk_cfg_set(&a, fields, NF, "model.name=;x"), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "override: [model] name = ';x'"));
    CU_ASSERT_STRING_EQUAL(a.name, "unet"); /* unchanged */
    CU_ASSERT_EQUAL(dk_cfg_set(&a, fields, NF, "model.name=#x;y #z"), DK_OK);
    const char *p = dk_test_path(dk_test_tmpdir(), "hash.ini");
    CU_ASSERT_EQUAL_FATAL(dk_cfg_write(&a, fields, NF, p), DK_OK);
    toy_defaults(&b);
    CU_ASSERT_EQUAL_FATAL(dk_cfg_load(&b, fields, NF, p), DK_OK);
    CU_ASSERT_STRING_EQUAL(b.name, "#x;y #z");
}

/* A list (DK_CFG_LIST): entries normalised to "a, b"; an indented line adds entries (a
 * list longer than a file's line), any other key refuses it naming the line; an override
 * may be longer than a line; dk_cfg_write breaks a long list over indented lines at its
 * separators and it reads back the same. */
typedef struct {
    char names[1024];
    int epochs;
} listy;

static const dk_cfg_field list_fields[] = {
    {"study", "names", DK_CFG_LIST, offsetof(listy, names), sizeof(((listy *)0)->names), 0, 0,
     "", NULL, "stage names"},
    {"study", "epochs", DK_CFG_INT, offsetof(listy, epochs), 0, 1, 100, "10", NULL, "epochs"},
};
enum { NLF = sizeof list_fields / sizeof list_fields[0] };

static void test_lists(void) {
    listy a, b;
    memset(&a, 0, sizeof a);
    dk_cfg_defaults(&a, list_fields, NLF);
    const char *p = put("list.ini", "[study]\nnames = a,b ,, c,\n  d, e\n\te2\n"
                                    "epochs = 3\n");
    CU_ASSERT_EQUAL_FATAL(dk_cfg_load(&a, list_fields, NLF, p), DK_OK);
    CU_ASSERT_STRING_EQUAL(a.names, "a, b, c, d, e, e2");
    CU_ASSERT_EQUAL(a.epochs, 3);
    /* an empty first line, the entries below it */
    p = put("list2.ini", "[study]\nnames =\n  x,\n  y\n");
    CU_ASSERT_EQUAL_FATAL(dk_cfg_load(&a, list_fields, NLF, p), DK_OK);
    CU_ASSERT_STRING_EQUAL(a.names, "x, y");
    /* an indented line after a key that is no list */
    p = put("list3.ini", "[study]\nepochs = 3\n  4\n");
    CU_ASSERT_EQUAL(dk_cfg_load(&a, list_fields, NLF, p), DK_ERR_ARG);
    char want[1024];
    snprintf(want, sizeof want, "%s:3: an indented line goes on with the value of [study] "
             "epochs above it, which is not a list", p);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), want));
    /* the same in the table without lists (toy): refused, not a duplicate key */
    expect_fail("[model]\nname = u\n  v\n", DK_ERR_ARG, "@:3: an indented line", "[model] name",
                NULL);
    /* an override and a written file longer than a line: 40 entries of 9-10 characters */
    char set[1024] = "study.names=", big[1024] = "";
    for (int i = 0; i < 40; i++) {
        char e[16];
        snprintf(e, sizeof e, "%sstage_%03d", i ? ", " : "", i);
        strcat(big, e);
    }
    strcat(set, big);
    memset(&a, 0, sizeof a);
    dk_cfg_defaults(&a, list_fields, NLF);
    CU_ASSERT_EQUAL_FATAL(dk_cfg_set(&a, list_fields, NLF, set), DK_OK);
    CU_ASSERT_STRING_EQUAL(a.names, big);
    const char *w = dk_test_path(dk_test_tmpdir(), "list_written.ini");
    CU_ASSERT_EQUAL_FATAL(dk_cfg_write(&a, list_fields, NLF, w), DK_OK);
    memset(&b, 0, sizeof b);
    dk_cfg_defaults(&b, list_fields, NLF);
    CU_ASSERT_EQUAL_FATAL(dk_cfg_load(&b, list_fields, NLF, w), DK_OK);
    CU_ASSERT_STRING_EQUAL(b.names, big);
    char out[8192];
    CU_ASSERT_EQUAL(dk_test_sh(out, sizeof out, "grep -c '^   *stage_' '%s'", w), 0);
    CU_ASSERT(atoi(out) >= 2); /* continuation lines, each within the line limit */
    CU_ASSERT_EQUAL(dk_test_sh(out, sizeof out, "awk 'length > 197' '%s' | wc -l", w), 0);
    CU_ASSERT_EQUAL(atoi(out), 0);
    /* an entry longer than a line can hold after its key */
    char huge[300] = "study.names=x, ";
    memset(huge + strlen(huge), 'y', 200);
    huge[sizeof huge - 1] = '\0';
    CU_ASSERT_EQUAL(dk_cfg_set(&a, list_fields, NLF, huge), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "override: [study] names: an entry of"));
}

static void test_help(void) {
    FILE *f = tmpfile();
    CU_ASSERT_FATAL(f != NULL);
    dk_cfg_print_help(fields, NF, f);
    char buf[4096] = "";
    rewind(f);
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    buf[k] = '\0';
    fclose(f);
    for (int i = 0; i < NF; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.%s", fields[i].section, fields[i].key);
        CU_ASSERT_PTR_NOT_NULL(strstr(buf, name));
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "[1, 100]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "mmd|coral|none"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "default coral"));
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("core.config", NULL, NULL);
    if (!s || !CU_add_test(s, "defaults", test_defaults) || !CU_add_test(s, "load", test_load) ||
        !CU_add_test(s, "unknown key with its line", test_unknown_key) ||
        !CU_add_test(s, "out of range", test_range) ||
        !CU_add_test(s, "bad bool, enum, number, string", test_bad_values) ||
        !CU_add_test(s, "duplicate key, syntax, long line, missing file", test_file_errors) ||
        !CU_add_test(s, "overrides (section.key=value)", test_set) ||
        !CU_add_test(s, "write -> load round trip", test_round_trip) ||
        !CU_add_test(s, "a value starting with ';' is refused", test_semicolon_value) ||
        !CU_add_test(s, "lists over several lines", test_lists) ||
        !CU_add_test(s, "help", test_help)) {
        CU_cleanup_registry();
        return 1;
    }
    return dk_test_run();
}
