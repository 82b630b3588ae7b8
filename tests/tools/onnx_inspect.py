"""Check an ONNX file with the onnx package's checker (full_check: shape inference too) and
print what tests/export/test_onnx.c asserts: the IR and opset, the op types, the graph's
inputs and outputs with their dims, and the metadata. Exit 1 when the checker refuses it.

    /usr/bin/python3 onnx_inspect.py MODEL.onnx
"""
import sys

import onnx


def dims(value):
    return ",".join(d.dim_param or str(d.dim_value) for d in value.type.tensor_type.shape.dim)


def main(path):
    model = onnx.load(path)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # the checker's own error types differ between versions
        print(f"checker refused {path}: {e}")
        return 1
    print("checker ok")
    print("ir_version", model.ir_version)
    for o in model.opset_import:
        print("opset", o.domain or "ai.onnx", o.version)
    print("ops", " ".join(sorted({n.op_type for n in model.graph.node})))
    print("initializers", len(model.graph.initializer))
    for v in model.graph.input:
        print("input", v.name, dims(v))
    for v in model.graph.output:
        print("output", v.name, dims(v))
    for p in model.metadata_props:
        print(f"meta {p.key}={p.value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
