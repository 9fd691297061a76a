#!/usr/bin/env python3
"""Runs an ONNX model with ONNX Runtime for the Rust cross-check (tests/ort.rs).

Usage: ort_check.py MODEL.onnx INPUT.bin OUT_DIR

INPUT.bin holds the model's single float32 input, little-endian, in the shape the model
declares. For every output NAME, OUT_DIR/NAME.bin receives its float32 values
(little-endian, row-major) and OUT_DIR/NAME.shape its shape as comma-separated integers.
"""

import os
import sys

import numpy as np
import onnxruntime as ort


def main() -> int:
    model, inp, out_dir = sys.argv[1:4]
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only: unused initializers are expected
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    (meta,) = sess.get_inputs()
    shape = [d if isinstance(d, int) else 1 for d in meta.shape]
    x = np.fromfile(inp, dtype="<f4").reshape(shape)
    names = [o.name for o in sess.get_outputs()]
    for name, y in zip(names, sess.run(names, {meta.name: x})):
        y = np.ascontiguousarray(y, dtype="<f4")
        y.tofile(os.path.join(out_dir, name + ".bin"))
        with open(os.path.join(out_dir, name + ".shape"), "w") as f:
            f.write(",".join(str(d) for d in y.shape))
    return 0


if __name__ == "__main__":
    sys.exit(main())
