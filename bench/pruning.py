#!/usr/bin/env python3
"""Pruning measurements for BENCHMARKS.md: file size, latency and MACs vs sparsity and
structured ratio, with the slimdet binary only.

    python3 bench/pruning.py --slimdet target/release/slimdet \
        --model testdata/golden/mb2-ssd-lite-voc21-seed0/model.pth [--rounds 3 --runs 20]

Prints markdown tables. Unstructured: l1, per layer, stem excluded; latency with
SLIMDET_SPARSE=off (dense kernels) and auto (sparse 1x1 kernel above break-even),
interleaved round by round so both see the same machine load; the best round's median
is reported (on a shared machine the least disturbed round). "1x1" is the sum of the
per-step times of all 1x1 convs from `slimdet bench --profile`.
"""
import argparse
import json
import os
import subprocess
import tempfile


def run(cmd, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=e).stdout


def bench(sd, model, runs, sparse):
    out = run([sd, "bench", "--model", model, "--runs", str(runs), "--profile", "--json"],
              {"SLIMDET_SPARSE": sparse})
    lines = out.strip().splitlines()
    res = json.loads(lines[-1])
    pw = 0.0
    for ln in lines:
        if ln.startswith("Pointwise") or ln.startswith("Sparse"):
            parts = ln.split()
            pw += float(parts[-2])
    res["pointwise_ms"] = pw
    return res


def best(rounds):
    return min(rounds, key=lambda r: r["median_ms"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--slimdet", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    sd = a.slimdet
    tmp = tempfile.mkdtemp(prefix="slimdet-prune-bench-")
    print("### Unstructured (l1, per layer, stem excluded)\n")
    print("| sparsity | dense file (B) | sparse file (B) | ratio | 1x1 convs on sparse kernel "
          "| forward dense (ms) | forward sparse (ms) | speed-up | 1x1 dense (ms) | 1x1 sparse (ms) | 1x1 speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for amount in [0.0, 0.5, 0.7, 0.8, 0.9, 0.95]:
        d = os.path.join(tmp, f"l1_{amount}.safetensors")
        s = os.path.join(tmp, f"l1_{amount}_sparse.safetensors")
        common = [sd, "prune", "--model", a.model, "--method", "l1", "--amount", str(amount),
                  "--exclude", "base_net.0.0"]
        run(common + ["-o", d])
        run(common + ["--sparse-format", "-o", s])
        info = json.loads(run([sd, "info", "--model", s, "--format", "json"]))
        off, auto = [], []
        for _ in range(a.rounds):
            off.append(bench(sd, s, a.runs, "off"))
            auto.append(bench(sd, s, a.runs, "auto"))
        o, u = best(off), best(auto)
        fd, fs = os.path.getsize(d), os.path.getsize(s)
        print(f"| {amount:.2f} | {fd} | {fs} | {fs / fd:.3f} | {info['sparse_convs']} "
              f"| {o['median_ms']:.2f} | {u['median_ms']:.2f} | {o['median_ms'] / u['median_ms']:.2f}x "
              f"| {o['pointwise_ms']:.2f} | {u['pointwise_ms']:.2f} | {o['pointwise_ms'] / u['pointwise_ms']:.2f}x |")
    print("\n### Structured (filter-l1, channel multiple 8)\n")
    print("| amount | params | MACs | MACs vs dense | file (B) | forward (ms) | speed-up |")
    print("|---|---|---|---|---|---|---|")
    base = None
    for amount in [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]:
        p = os.path.join(tmp, f"s_{amount}.safetensors")
        rep = json.loads(run([sd, "prune", "--model", a.model, "--method", "filter-l1",
                              "--amount", str(amount), "--format", "json", "-o", p]))
        r = best([bench(sd, p, a.runs, "off") for _ in range(a.rounds)])
        if base is None:
            base = (rep["macs_after"], r["median_ms"])
        print(f"| {amount:.1f} | {rep['params_after']} | {rep['macs_after']} "
              f"| {rep['macs_after'] / base[0]:.3f} | {os.path.getsize(p)} | {r['median_ms']:.2f} "
              f"| {base[1] / r['median_ms']:.2f}x |")


if __name__ == "__main__":
    main()
