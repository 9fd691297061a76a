#!/usr/bin/env python3
"""Side-by-side latency of slimdet and ONNX Runtime on the same weights, for BENCHMARKS.md.

Exports the model to ONNX with `slimdet export`, then times, in one run and interleaved
(slimdet, ORT, slimdet, ORT, ...) so that both see the same machine state:
  - slimdet fp32 and ONNX Runtime fp32, at 1 and 2 threads;
  - ONNX Runtime int8 (QDQ, uint8 activations, per-channel int8 weights), and slimdet int8
    when `--int8-model` gives a model quantized by `slimdet quantize`.
Prints a Markdown table of medians and the ratios slimdet / ORT (below 1.0: slimdet faster),
plus the peak RSS of each process.

Optional, not used by the tests: needs `pip install onnxruntime onnx numpy`.

    python3 bench/compare.py [--model M.pth] [--rounds 3] [--runs 100] [--int8-model Q]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_MODEL = os.path.join(ROOT, "testdata", "golden", "mb2-ssd-lite-voc21-seed0", "model.pth")


def last_json(out):
    lines = [l for l in out.splitlines() if l.startswith("{")]
    return [json.loads(l) for l in lines]


def slimdet(binary, model, threads, runs):
    """`slimdet bench`: the precision follows the file (fp32, or int8 from `slimdet quantize`)."""
    cmd = [binary, "bench", "--model", model, "--threads", str(threads), "--runs", str(runs), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return last_json(out)[-1]


def ort(onnx, threads, runs, int8):
    cmd = [sys.executable, os.path.join(HERE, "ort_peer.py"), "--onnx", onnx, "--threads", str(threads), "--runs", str(runs)]
    if int8:
        cmd.append("--int8")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return last_json(out)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "slimdet"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--int8-model", default=None)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    onnx = os.path.join(tmp, "model.onnx")
    subprocess.run([a.binary, "export", "--model", a.model, "-o", onnx], check=True, capture_output=True)
    best = {}

    def keep(key, ms, rss=None):
        old = best.get(key)
        if old is None or ms < old[0]:
            best[key] = (ms, rss if rss is not None else (old[1] if old else None))

    for _ in range(a.rounds):
        for threads in (1, 2):
            s = slimdet(a.binary, a.model, threads, a.runs)
            keep(("slimdet", "fp32", threads), s["median_ms"], s.get("peak_rss_bytes"))
            rows = ort(onnx, threads, a.runs, int8=(threads == 1))
            rss = rows[-1].get("peak_rss_bytes")
            keep(("ort", "fp32", threads), rows[0]["median_ms"], rss)
            if threads == 1 and len(rows) > 2:
                keep(("ort", "int8", 1), rows[1]["median_ms"], rss)
            if a.int8_model and threads == 1:
                q = slimdet(a.binary, a.int8_model, 1, a.runs)
                keep(("slimdet", "int8", 1), q["median_ms"], q.get("peak_rss_bytes"))
    print(f"CPU: {cpu_name()}; best median of {a.rounds} interleaved rounds x {a.runs} runs")
    print()
    print("| setting | slimdet ms | ONNX Runtime ms | slimdet / ORT | slimdet peak RSS MB | ORT peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for prec, threads in (("fp32", 1), ("fp32", 2), ("int8", 1)):
        s = best.get(("slimdet", prec, threads))
        o = best.get(("ort", prec, threads))
        fmt = lambda v: f"{v[0]:.2f}" if v else "n/a"
        ratio = f"{s[0] / o[0]:.2f}" if s and o else "n/a"
        mb = lambda v: f"{v[1] / 2**20:.1f}" if v and v[1] else "n/a"
        print(f"| {prec}, {threads} thread(s) | {fmt(s)} | {fmt(o)} | {ratio} | {mb(s)} | {mb(o)} |")
    s1, s2 = best.get(("slimdet", "fp32", 1)), best.get(("slimdet", "fp32", 2))
    if s1 and s2:
        print(f"\nslimdet fp32 2-thread speed-up: {s1[0] / s2[0]:.2f}x")


if __name__ == "__main__":
    main()
