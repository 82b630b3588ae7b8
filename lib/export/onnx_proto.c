/*
 * The ONNX protobuf builder (onnx_internal.h): protobuf-c messages made on the heap and
 * recorded for one release, then the ModelProto packed straight into a temporary file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx_internal.h"

enum { IR_VERSION = 7 }; /* the IR that goes with opset 13 */

void ox_init(ox_graph *g) { memset(g, 0, sizeof *g); }

static void list_push(ox_graph *g, ox_list *l, void *p) {
    if (g->st != DK_OK) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        void **v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            g->st = dk_fail(DK_ERR_NOMEM, "onnx export: cannot grow a list to %zu entries", cap);
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = p;
}

void ox_free(ox_graph *g) {
    if (!g) return;
    for (size_t i = 0; i < g->owned.n; i++) free(g->owned.v[i]);
    ox_list *lists[] = {&g->owned, &g->nodes, &g->inits, &g->meta, &g->inputs, &g->outputs};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) free(lists[i]->v);
    memset(g, 0, sizeof *g);
}

/* `bytes` zeroed bytes owned by g, or NULL (failure recorded). */
static void *own(ox_graph *g, size_t bytes) {
    if (g->st != DK_OK) return NULL;
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) {
        g->st = dk_fail(DK_ERR_NOMEM, "onnx export: cannot allocate %zu bytes", bytes);
        return NULL;
    }
    list_push(g, &g->owned, p);
    if (g->st != DK_OK) {
        free(p);
        return NULL;
    }
    return p;
}

char *ox_str(ox_graph *g, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? own(g, (size_t)n + 1) : NULL;
    if (s) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return s;
}

/* A typed copy of l's pointers owned by g (protobuf-c wants T **, the lists hold void *). */
static void *own_ptrs(ox_graph *g, const ox_list *l) {
    void **v = own(g, (l->n ? l->n : 1) * sizeof *v);
    if (v && l->n) memcpy(v, l->v, l->n * sizeof *v);
    return v;
}

static Onnx__AttributeProto *attr(ox_graph *g, const char *name,
                                  Onnx__AttributeProto__AttributeType type) {
    Onnx__AttributeProto *a = own(g, sizeof *a);
    if (!a) return NULL;
    onnx__attribute_proto__init(a);
    a->name = ox_str(g, "%s", name);
    a->has_type = 1;
    a->type = type;
    return a;
}

Onnx__AttributeProto *ox_attr_ints(ox_graph *g, const char *name, const int64_t *v, int n) {
    Onnx__AttributeProto *a = attr(g, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *ints = own(g, (size_t)n * sizeof *ints);
    if (!a || !ints) return NULL;
    memcpy(ints, v, (size_t)n * sizeof *ints);
    a->n_ints = (size_t)n;
    a->ints = ints;
    return a;
}

/* An int or float attribute: the one field its type names is set. */
static Onnx__AttributeProto *attr_scalar(ox_graph *g, const char *name,
                                         Onnx__AttributeProto__AttributeType type, int64_t i,
                                         float f) {
    Onnx__AttributeProto *a = attr(g, name, type);
    if (a && type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) a->has_i = 1, a->i = i;
    if (a && type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) a->has_f = 1, a->f = f;
    return a;
}

Onnx__AttributeProto *ox_attr_int(ox_graph *g, const char *name, int64_t v) {
    return attr_scalar(g, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, v, 0.0f);
}

Onnx__AttributeProto *ox_attr_float(ox_graph *g, const char *name, float v) {
    return attr_scalar(g, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, 0, v);
}

Onnx__AttributeProto *ox_attr_str(ox_graph *g, const char *name, const char *v) {
    Onnx__AttributeProto *a = attr(g, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    char *s = ox_str(g, "%s", v);
    if (!a || !s) return NULL;
    a->has_s = 1;
    a->s.data = (uint8_t *)s;
    a->s.len = strlen(s);
    return a;
}

const char *ox_node(ox_graph *g, const char *op, const char *out, const char *const *in,
                    int nin, Onnx__AttributeProto *const *at, int nat) {
    Onnx__NodeProto *nd = own(g, sizeof *nd);
    char **ins = own(g, (size_t)nin * sizeof *ins), **outs = own(g, sizeof *outs);
    Onnx__AttributeProto **ats = own(g, (size_t)(nat ? nat : 1) * sizeof *ats);
    char *name = ox_str(g, "%s", out), *type = ox_str(g, "%s", op);
    if (!nd || !ins || !outs || !ats || !name || !type) return NULL;
    /* g has no failure yet, so every value and attribute made before this call exists */
    for (int i = 0; i < nin; i++) {
        DK_ASSERT(in[i] != NULL);
        if (!(ins[i] = ox_str(g, "%s", in[i]))) return NULL;
    }
    for (int i = 0; i < nat; i++) {
        DK_ASSERT(at[i] != NULL);
        ats[i] = at[i];
    }
    onnx__node_proto__init(nd);
    nd->name = outs[0] = name;
    nd->op_type = type;
    nd->n_input = (size_t)nin;
    nd->input = ins;
    nd->n_output = 1;
    nd->output = outs;
    nd->n_attribute = (size_t)nat;
    nd->attribute = ats;
    list_push(g, &g->nodes, nd);
    return g->st == DK_OK ? name : NULL;
}

const char *ox_initializer(ox_graph *g, const char *name, int ndim, const int64_t *dims,
                           const float *data) {
    Onnx__TensorProto *t = own(g, sizeof *t);
    int64_t *d = own(g, (size_t)ndim * sizeof *d);
    char *nm = ox_str(g, "%s", name);
    if (!t || !d || !nm) return NULL;
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) count *= (d[i] = dims[i]);
    onnx__tensor_proto__init(t);
    t->name = nm;
    t->n_dims = (size_t)ndim;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    /* raw_data is little-endian float32; the model's floats are that on every host dakd
     * builds for (the safetensors reader assumes it too). protobuf-c only reads it. */
    t->has_raw_data = 1;
    t->raw_data.len = (size_t)count * sizeof(float);
    t->raw_data.data = (uint8_t *)(uintptr_t)data;
    list_push(g, &g->inits, t);
    g->init_floats += count;
    return g->st == DK_OK ? nm : NULL;
}

void ox_value(ox_graph *g, int is_output, const char *name, const char *doc, int ndim,
              const int64_t *dims, const char *const *params) {
    Onnx__ValueInfoProto *v = own(g, sizeof *v);
    Onnx__TypeProto *tp = own(g, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = own(g, sizeof *tt);
    Onnx__TensorShapeProto *sh = own(g, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dv = own(g, (size_t)ndim * sizeof *dv);
    if (!v || !tp || !tt || !sh || !dv) return;
    for (int i = 0; i < ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = own(g, sizeof *d);
        if (!d) return;
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i] > 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = ox_str(g, "%s", params[i]);
        }
        dv[i] = d;
    }
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = (size_t)ndim;
    sh->dim = dv;
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    onnx__type_proto__init(tp);
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    onnx__value_info_proto__init(v);
    v->name = ox_str(g, "%s", name);
    v->doc_string = ox_str(g, "%s", doc);
    v->type = tp;
    list_push(g, is_output ? &g->outputs : &g->inputs, v);
}

void ox_meta(ox_graph *g, const char *key, const char *value) {
    Onnx__StringStringEntryProto *e = own(g, sizeof *e);
    if (!e) return;
    onnx__string_string_entry_proto__init(e);
    e->key = ox_str(g, "%s", key);
    e->value = ox_str(g, "%s", value);
    list_push(g, &g->meta, e);
}

/* ---------------------------------------------------------------- writing */

/* protobuf-c's output sink: appends go straight to the file (weights are not copied). */
typedef struct {
    ProtobufCBuffer base;
    FILE *f;
    int err; /* errno of the first failed write, 0 while all went well */
} file_sink;

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data) {
    file_sink *s = (file_sink *)b;
    if (!s->err && len && fwrite(data, 1, len, s->f) != len) s->err = errno ? errno : EIO;
}

/* The ModelProto over g's lists (owned by g). */
static Onnx__ModelProto *assemble(ox_graph *g, int opset, const char *graph_name,
                                  const char *doc) {
    Onnx__ModelProto *m = own(g, sizeof *m);
    Onnx__GraphProto *gr = own(g, sizeof *gr);
    Onnx__OperatorSetIdProto *op = own(g, sizeof *op), **ops = own(g, sizeof *ops);
    if (!m || !gr || !op || !ops) return NULL;
    onnx__operator_set_id_proto__init(op);
    op->domain = ox_str(g, "%s", ""); /* the default ONNX domain */
    op->has_version = 1;
    op->version = opset;
    ops[0] = op;
    onnx__graph_proto__init(gr);
    gr->name = ox_str(g, "%s", graph_name);
    gr->doc_string = ox_str(g, "%s", doc);
    gr->n_node = g->nodes.n, gr->node = own_ptrs(g, &g->nodes);
    gr->n_initializer = g->inits.n, gr->initializer = own_ptrs(g, &g->inits);
    gr->n_input = g->inputs.n, gr->input = own_ptrs(g, &g->inputs);
    gr->n_output = g->outputs.n, gr->output = own_ptrs(g, &g->outputs);
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = IR_VERSION;
    m->n_opset_import = 1;
    m->opset_import = ops;
    m->producer_name = ox_str(g, "dakd");
    m->producer_version = ox_str(g, "%s", dk_version_string());
    m->doc_string = ox_str(g, "%s", doc);
    m->graph = gr;
    m->n_metadata_props = g->meta.n;
    m->metadata_props = own_ptrs(g, &g->meta);
    return g->st == DK_OK ? m : NULL;
}

/* Pack m into tmp; DK_ERR_IO naming out_path (tmp is the caller's to remove). */
static dk_status pack_file(const Onnx__ModelProto *m, const char *tmp, const char *out_path) {
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return dk_fail(DK_ERR_IO, "%s: cannot create the file in its folder: %s", out_path,
                       strerror(errno));
    file_sink s = {{sink_append}, f, 0};
    onnx__model_proto__pack_to_buffer(m, &s.base);
    if (!s.err && fflush(f) != 0) s.err = errno ? errno : EIO;
    if (fclose(f) != 0 && !s.err) s.err = errno ? errno : EIO;
    if (s.err)
        return dk_fail(DK_ERR_IO, "%s: cannot write: %s", out_path, strerror(s.err));
    return DK_OK;
}

dk_status ox_write(ox_graph *g, const char *out_path, int opset, const char *graph_name,
                   const char *doc, int64_t *bytes) {
    *bytes = 0;
    Onnx__ModelProto *m = assemble(g, opset, graph_name, doc);
    if (!m) return g->st;
    size_t size = onnx__model_proto__get_packed_size(m);
    if (size > (size_t)INT32_MAX)
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: the network takes %zu bytes of protobuf, past "
                       "the 2 GiB a protobuf message may hold (ONNX external data is not "
                       "written)", out_path, size);
    char tmp[4096];
    dk_status st = dk_tmp_path_for(tmp, sizeof tmp, out_path);
    if (st != DK_OK) return st;
    if ((st = pack_file(m, tmp, out_path)) != DK_OK) {
        unlink(tmp);
        return st;
    }
    if ((st = dk_commit_file(tmp, out_path)) != DK_OK) return st;
    *bytes = (int64_t)size;
    return DK_OK;
}
