"""Compares two `slimdet detect` JSON outputs: the same detections in the same order (label),
scores within TOL and box corners within TOL relative to the image size (1 px per 1e-3 of a
1000-px side). Usage: same_detections.py A.json B.json TOL"""
import json
import sys

a, b, tol = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), float(sys.argv[3])
assert len(a) == len(b), f"{len(a)} vs {len(b)} detections"
worst = 0.0
for i, (x, y) in enumerate(zip(a, b)):
    assert x["label"] == y["label"], f"detection {i}: {x['label']} vs {y['label']}"
    d = abs(x["score"] - y["score"])
    assert d <= tol, f"detection {i}: score {x['score']} vs {y['score']}"
    worst = max(worst, d)
    for u, v in zip(x["box"], y["box"]):
        assert abs(u - v) <= tol * 1000, f"detection {i}: box {x['box']} vs {y['box']}"
print(f"{len(a)} detections equal (largest score difference {worst:.2e})")
