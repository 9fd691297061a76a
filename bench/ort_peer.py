#!/usr/bin/env python3
"""Peer timings for BENCHMARKS.md: ONNX Runtime on the same ONNX model as slimdet.

Times the forward pass (batch 1, fixed seeded input) of an fp32 ONNX model and of its
int8 static quantization (QDQ, per-channel int8 weights, uint8 activations, min/max
calibration on seeded inputs, as ONNX Runtime's fast path wants), single run per setting,
warm-up first, then the median, p10 and p90. Prints one JSON object per setting.

Optional: needs `pip install onnxruntime onnx numpy`. Not used by the tests.

    python3 bench/ort_peer.py --onnx model.onnx [--threads 1] [--runs 100] [--int8]
"""
import argparse
import json
import os
import resource
import tempfile
import time

import numpy as np
import onnxruntime as ort


def time_session(path, threads, runs, warmup, x):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for _ in range(warmup):
        sess.run(None, {name: x})
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {name: x})
        ms.append((time.perf_counter() - t) * 1e3)
    ms = np.array(ms)
    return {
        "median_ms": float(np.median(ms)),
        "p10_ms": float(np.percentile(ms, 10)),
        "p90_ms": float(np.percentile(ms, 90)),
        "mean_ms": float(ms.mean()),
        "std_ms": float(ms.std(ddof=1)) if len(ms) > 1 else 0.0,
        "runs": runs,
        "threads": threads,
    }


def quantize(path, shape, calib):
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, name):
            rng = np.random.default_rng(0)
            self.items = iter([{name: rng.uniform(-1, 1, shape).astype(np.float32)} for _ in range(calib)])

        def get_next(self):
            return next(self.items, None)

    name = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).get_inputs()[0].name
    tmpdir = tempfile.mkdtemp()
    pre = os.path.join(tmpdir, "pre.onnx")
    out = os.path.join(tmpdir, "int8.onnx")
    quant_pre_process(path, pre, skip_symbolic_shape=True)
    quantize_static(pre, out, Reader(name), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--int8", action="store_true")
    ap.add_argument("--calib", type=int, default=16)
    a = ap.parse_args()
    sess = ort.InferenceSession(a.onnx, providers=["CPUExecutionProvider"])
    shape = [d if isinstance(d, int) else 1 for d in sess.get_inputs()[0].shape]
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    r = time_session(a.onnx, a.threads, a.runs, a.warmup, x)
    r.update({"runtime": "onnxruntime " + ort.__version__, "precision": "fp32", "model": a.onnx})
    print(json.dumps(r))
    if a.int8:
        q = quantize(a.onnx, shape, a.calib)
        r = time_session(q, a.threads, a.runs, a.warmup, x)
        r.update({"runtime": "onnxruntime " + ort.__version__, "precision": "int8 (QDQ, u8 act, s8 per-channel w)", "model": q})
        print(json.dumps(r))
    print(json.dumps({"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main()
