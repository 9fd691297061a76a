#!/usr/bin/env python3
"""Quantizes an fp32 ONNX detector with ONNX Runtime's static quantizer in QOperator
format (QLinearConv / QLinearAdd), for the Rust cross-check (tests/qoperator.rs).

Usage: ort_qoperator.py IN.onnx OUT.onnx CALIB.bin [CALIB.bin ...] [--per-tensor] [--s8] [--all]

Every CALIB.bin holds one float32 input in the shape the model declares (little-endian).
The model is first pre-processed as ONNX Runtime recommends (quant_pre_process: batch
norms folded into the convolutions; the nodes come out in another order than the
exporter's). Then the network part (every node with a convolution at or after it) is
quantized, Conv, Add, Relu and Clip only (RFB's branch concatenation stays float);
post-processing (the heads' concatenation, box decoding) stays float. With
--all every operator ONNX Runtime can quantize is (QLinearConcat, QLinearMul, ...).
Activations are uint8, or int8 with --s8; weights int8, per channel unless --per-tensor.
"""

import os
import sys
import tempfile

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process


def network_nodes(graph):
    """Names of the nodes that are convolutions or have one downstream."""
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    memo = {}

    def reaches_conv(n):
        if n.name in memo:
            return memo[n.name]
        memo[n.name] = False
        hit = n.op_type == "Conv" or any(
            reaches_conv(c) for o in n.output for c in consumers.get(o, [])
        )
        memo[n.name] = hit
        return hit

    return [n.name for n in graph.node if reaches_conv(n)]


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    src, dst, calib = args[0], args[1], args[2:]
    everything = "--all" in flags
    m = onnx.load(src)
    # Initializers listed as graph inputs (old exporters) block BN folding.
    inits = {t.name for t in m.graph.initializer}
    keep = [i for i in m.graph.input if i.name not in inits]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    for k, n in enumerate(m.graph.node):
        if not n.name:
            n.name = f"{n.op_type}_{k}"
    if m.opset_import[0].version < 13:
        m = onnx.version_converter.convert_version(m, 13)
    with tempfile.TemporaryDirectory() as tmp:
        a, b = os.path.join(tmp, "a.onnx"), os.path.join(tmp, "b.onnx")
        onnx.save(m, a)
        quant_pre_process(a, b, skip_symbolic_shape=True)
        pre = onnx.load(b)
        (inp,) = [i for i in pre.graph.input]
        shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
        data = [np.fromfile(c, dtype="<f4").reshape(shape) for c in calib]

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter([{inp.name: x} for x in data])

            def get_next(self):
                return next(self.it, None)

        quantize_static(
            b,
            dst,
            Reader(),
            quant_format=QuantFormat.QOperator,
            per_channel="--per-tensor" not in flags,
            activation_type=QuantType.QInt8 if "--s8" in flags else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_quantize=None if everything else network_nodes(pre.graph),
            op_types_to_quantize=None if everything else ["Conv", "Add", "Relu", "Clip"],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
