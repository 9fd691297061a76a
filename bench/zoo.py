#!/usr/bin/env python3
"""Every pytorch-ssd network, slimdet against ONNX Runtime on the same weights, for BENCHMARKS.md.

For each network's pytorch-ssd `.pth` (the zoo goldens in testdata/golden/pytorch-ssd: pytorch-ssd's
own code, seeded weights): parameters and MACs (`slimdet info`), then, interleaved in each round
(slimdet, ORT, ...) on 1 thread, the median forward latency of
  - slimdet fp32 (`slimdet bench` on the .pth) and ONNX Runtime fp32 on `slimdet export` of it;
  - slimdet int8 (`slimdet quantize`, static, per-channel weights, u8 activations, min/max on the
    4 fixture photos) and ONNX Runtime int8 (its own static QDQ quantization of the same export,
    per-channel s8 weights, u8 activations; `bench/ort_peer.py`).
Prints a Markdown table with the ratios slimdet / ORT (below 1.0: slimdet faster), best median of
the rounds.

Optional, not used by the tests: needs `pip install onnxruntime onnx numpy`.

    python3 bench/zoo.py [--rounds 2] [--runs 20] [--nets mb1-ssd,mb3-large-ssd-lite]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from compare import ROOT, cpu_name, ort, slimdet  # noqa: E402

NETS = ["vgg16-ssd", "mb1-ssd", "mb1-ssd-lite", "sq-ssd-lite", "mb2-ssd-lite",
        "mb3-large-ssd-lite", "mb3-small-ssd-lite"]


def pth(net):
    if net == "mb2-ssd-lite":
        return os.path.join(ROOT, "testdata", "golden", "mb2-ssd-lite-voc21-seed0", "model.pth")
    return os.path.join(ROOT, "testdata", "golden", "pytorch-ssd", f"{net}-voc21-seed0", "model.pth")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "slimdet"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--nets", default=",".join(NETS))
    a = ap.parse_args()
    voc = os.path.join(ROOT, "testdata", "fixtures", "voc2007", "VOCdevkit")
    tmp = tempfile.mkdtemp()
    rows = []
    for net in a.nets.split(","):
        model = pth(net)
        info = json.loads(subprocess.run([a.binary, "info", "--model", model, "--format", "json"],
                                         check=True, capture_output=True, text=True).stdout)
        onnx = os.path.join(tmp, f"{net}.onnx")
        q = os.path.join(tmp, f"{net}-int8.safetensors")
        subprocess.run([a.binary, "export", "--model", model, "-o", onnx], check=True, capture_output=True)
        subprocess.run([a.binary, "quantize", "--model", model, "--calib-voc", voc, "--calib-split", "test",
                        "--calib-images", "4", "--observer", "minmax", "-o", q], check=True, capture_output=True)
        best = {}
        for _ in range(a.rounds):
            for key, ms in (("s32", slimdet(a.binary, model, 1, a.runs)["median_ms"]),
                            ("s8", slimdet(a.binary, q, 1, a.runs)["median_ms"])):
                best[key] = min(ms, best.get(key, ms))
            r = ort(onnx, 1, a.runs, int8=True)
            for key, ms in (("o32", r[0]["median_ms"]), ("o8", r[1]["median_ms"])):
                best[key] = min(ms, best.get(key, ms))
        rows.append((net, info["params"], info["macs"], best))
        print(f"{net}: {best}", file=sys.stderr)
    print(f"CPU: {cpu_name()}; 1 thread; best median of {a.rounds} interleaved rounds x {a.runs} runs")
    print()
    print("| network | params | MACs | slimdet fp32 ms | ORT fp32 ms | fp32 ratio | slimdet int8 ms | ORT int8 ms | int8 ratio | slimdet int8 speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for net, params, macs, b in rows:
        print(f"| {net} | {params:,} | {macs / 1e9:.2f} G | {b['s32']:.2f} | {b['o32']:.2f} | {b['s32'] / b['o32']:.2f} "
              f"| {b['s8']:.2f} | {b['o8']:.2f} | {b['s8'] / b['o8']:.2f} | {b['s32'] / b['s8']:.2f}x |")


if __name__ == "__main__":
    main()
