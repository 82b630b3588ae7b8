/*
 * What lib/export's two files share: a small builder over protobuf-c's ONNX messages
 * (onnx_proto.c), used by the U-Net graph writer (onnx.c).
 *
 * Every message, string and array the builder makes is calloc'ed and recorded in its
 * `owned` list, so one ox_free releases the whole model; weights are BORROWED (an
 * initialiser's raw_data points at the model's float buffer, which must outlive ox_write).
 * The first failure (allocation) is kept in `st`; later calls then do nothing and return
 * NULL, so a graph is built without a check after each node and the status read once.
 */
#ifndef DAKD_ONNX_INTERNAL_H
#define DAKD_ONNX_INTERNAL_H

#include "dakd/export.h"
#include "onnx/onnx.pb-c.h"

typedef struct {
    void **v;
    size_t n, cap;
} ox_list;

typedef struct {
    dk_status st;     /* the first failure, DK_OK until then */
    ox_list owned;    /* every allocation */
    ox_list nodes;    /* Onnx__NodeProto *, in graph order */
    ox_list inits;    /* Onnx__TensorProto * (initialisers) */
    ox_list meta;     /* Onnx__StringStringEntryProto * (metadata_props) */
    ox_list inputs, outputs; /* Onnx__ValueInfoProto * */
    int64_t init_floats;
} ox_graph;

/* A zeroed builder. */
void ox_init(ox_graph *g);
/* Free everything the builder made (NULL-safe on a zeroed one). */
void ox_free(ox_graph *g);

/* A formatted string owned by g, or NULL after a failure. */
char *ox_str(ox_graph *g, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Attributes (NULL after a failure): a list of ints, one int, one float, one string. */
Onnx__AttributeProto *ox_attr_ints(ox_graph *g, const char *name, const int64_t *v, int n);
Onnx__AttributeProto *ox_attr_int(ox_graph *g, const char *name, int64_t v);
Onnx__AttributeProto *ox_attr_float(ox_graph *g, const char *name, float v);
Onnx__AttributeProto *ox_attr_str(ox_graph *g, const char *name, const char *v);

/* Append a node of op type `op` with inputs in[0..nin) (value names; "" for an omitted
 * optional input) and attributes at[0..nat); its one output value, and the node itself, are
 * named `out`. Returns `out` (owned by g), or NULL after a failure. */
const char *ox_node(ox_graph *g, const char *op, const char *out, const char *const *in,
                    int nin, Onnx__AttributeProto *const *at, int nat);

/* A float32 initialiser `name` of shape dims[0..ndim) whose raw_data BORROWS data
 * (prod(dims) floats, little-endian as the host). Returns its name, or NULL. */
const char *ox_initializer(ox_graph *g, const char *name, int ndim, const int64_t *dims,
                           const float *data);

/* A float32 graph input (is_output = 0) or output of shape dims[0..ndim): dims[i] > 0 is
 * fixed, dims[i] <= 0 is the symbolic dimension params[i]. */
void ox_value(ox_graph *g, int is_output, const char *name, const char *doc, int ndim,
              const int64_t *dims, const char *const *params);

/* A metadata_props entry (both strings copied). */
void ox_meta(ox_graph *g, const char *key, const char *value);

/* Assemble the ModelProto (IR version 7, the default domain at `opset`, producer dakd and
 * its version, the doc strings) and write it to `out_path` through a temporary file and
 * rename; *bytes receives the file's size. DK_ERR_UNSUPPORTED past protobuf's 2 GiB,
 * DK_ERR_IO naming out_path. A failure recorded in g earlier is returned as it is. */
dk_status ox_write(ox_graph *g, const char *out_path, int opset, const char *graph_name,
                   const char *doc, int64_t *bytes);

#endif
