#!/usr/bin/env python3
"""PyTorch CPU peer for `slimdet train` throughput (optional; not run by CI).

Builds MobileNetV2-SSD-Lite exactly as qfgaohao/pytorch-ssd does
(`create_mobilenetv2_ssd_lite`, ReLU6, BN after every conv, SeperableConv2d heads; see
../shared/docs/pytorch-ssd-spec.md section 2), with pytorch-ssd's MultiboxLoss (hard
negative mining at 3:1, smooth L1 + cross-entropy over num_pos) and SGD with momentum 0.9
and weight decay 5e-4, and times training steps on the CPU.

What one step includes: forward in train mode, MultiboxLoss, backward, optimizer.step().
What it does not include: data loading and augmentation. The batch is fixed random data
(uniform [-1, 1] images [B, 3, 300, 300]; per image 12 random positive priors with random
classes and box targets, the rest background), built once before timing. `slimdet train`'s
own images/s also includes waiting for its loader thread (normally ~0 since batches are
prefetched), so this peer is, if anything, favoured.

Reported like `slimdet train --max-steps`: `--warmup` untimed steps, then `--steps` timed
steps; images/s = batch * steps / wall time of the timed steps.

    /work/venv-torch/bin/python bench/torch_train_peer.py --batch 8 --threads 1 --steps 4
"""

import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------- model (pytorch-ssd)


def conv_bn(inp, oup, stride):
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), nn.ReLU6(inplace=True)
    )


def conv_1x1_bn(inp, oup):
    return nn.Sequential(
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup), nn.ReLU6(inplace=True)
    )


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        if expand_ratio == 1:
            self.conv = nn.Sequential(
                nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU6(inplace=True),
                nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
                nn.BatchNorm2d(oup),
            )
        else:
            self.conv = nn.Sequential(
                nn.Conv2d(inp, hidden, 1, 1, 0, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU6(inplace=True),
                nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU6(inplace=True),
                nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
                nn.BatchNorm2d(oup),
            )

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def mobilenet_v2_features(width_mult=1.0):
    setting = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
               (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    input_channel = int(32 * width_mult)
    last_channel = int(1280 * width_mult) if width_mult > 1.0 else 1280
    features = [conv_bn(3, input_channel, 2)]
    for t, c, n, s in setting:
        output_channel = int(c * width_mult)
        for i in range(n):
            features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t))
            input_channel = output_channel
    features.append(conv_1x1_bn(input_channel, last_channel))
    return nn.Sequential(*features)


def sep_conv(inp, out):
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, 1, 1, groups=inp),
        nn.BatchNorm2d(inp),
        nn.ReLU6(),
        nn.Conv2d(inp, out, 1),
    )


class SSDLite(nn.Module):
    """`create_mobilenetv2_ssd_lite(num_classes, width_mult)` in train mode (is_test=False)."""

    def __init__(self, num_classes, width_mult=1.0):
        super().__init__()
        self.num_classes = num_classes
        self.base_net = mobilenet_v2_features(width_mult)
        self.extras = nn.ModuleList([
            InvertedResidual(1280, 512, 2, 0.2),
            InvertedResidual(512, 256, 2, 0.25),
            InvertedResidual(256, 256, 2, 0.5),
            InvertedResidual(256, 64, 2, 0.25),
        ])
        c0 = round(576 * width_mult)
        ins = [c0, 1280, 512, 256, 256]
        self.regression_headers = nn.ModuleList(
            [sep_conv(i, 6 * 4) for i in ins] + [nn.Conv2d(64, 6 * 4, 1)])
        self.classification_headers = nn.ModuleList(
            [sep_conv(i, 6 * num_classes) for i in ins] + [nn.Conv2d(64, 6 * num_classes, 1)])
        # pytorch-ssd: xavier_uniform_ on the extras' and headers' conv weights, zero biases.
        for m in list(self.extras.modules()) + list(self.regression_headers.modules()) + \
                list(self.classification_headers.modules()):
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def compute_header(self, i, x):
        conf = self.classification_headers[i](x)
        conf = conf.permute(0, 2, 3, 1).contiguous().view(conf.size(0), -1, self.num_classes)
        loc = self.regression_headers[i](x)
        loc = loc.permute(0, 2, 3, 1).contiguous().view(loc.size(0), -1, 4)
        return conf, loc

    def forward(self, x):
        confs, locs = [], []
        for layer in self.base_net[:14]:
            x = layer(x)
        block = self.base_net[14]
        y = block.conv[:3](x)  # GraphPath(14, 'conv', 3)
        c, l = self.compute_header(0, y)
        confs.append(c)
        locs.append(l)
        x = block.conv[3:](y)
        for layer in self.base_net[15:]:
            x = layer(x)
        c, l = self.compute_header(1, x)
        confs.append(c)
        locs.append(l)
        for e, layer in enumerate(self.extras):
            x = layer(x)
            c, l = self.compute_header(2 + e, x)
            confs.append(c)
            locs.append(l)
        return torch.cat(confs, 1), torch.cat(locs, 1)


# ---------------------------------------------------------------- loss (pytorch-ssd)


def hard_negative_mining(loss, labels, neg_pos_ratio):
    pos_mask = labels > 0
    num_pos = pos_mask.long().sum(dim=1, keepdim=True)
    num_neg = num_pos * neg_pos_ratio
    loss[pos_mask] = -math.inf
    _, indexes = loss.sort(dim=1, descending=True)
    _, orders = indexes.sort(dim=1)
    neg_mask = orders < num_neg
    return pos_mask | neg_mask


class MultiboxLoss(nn.Module):
    def __init__(self, neg_pos_ratio=3):
        super().__init__()
        self.neg_pos_ratio = neg_pos_ratio

    def forward(self, confidence, predicted_locations, labels, gt_locations):
        num_classes = confidence.size(2)
        with torch.no_grad():
            loss = -F.log_softmax(confidence, dim=2)[:, :, 0]
            mask = hard_negative_mining(loss, labels, self.neg_pos_ratio)
        confidence = confidence[mask, :]
        classification_loss = F.cross_entropy(
            confidence.reshape(-1, num_classes), labels[mask], reduction="sum")
        pos_mask = labels > 0
        predicted_locations = predicted_locations[pos_mask, :].reshape(-1, 4)
        gt_locations = gt_locations[pos_mask, :].reshape(-1, 4)
        smooth_l1_loss = F.smooth_l1_loss(predicted_locations, gt_locations, reduction="sum")
        num_pos = gt_locations.size(0)
        return smooth_l1_loss / num_pos, classification_loss / num_pos


# ---------------------------------------------------------------- timing


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=4, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--classes", type=int, default=11, help="with background (synthetic set: 11)")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    net = SSDLite(a.classes, a.width)
    net.train()
    crit = MultiboxLoss(3)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    priors = 3000
    g = torch.Generator().manual_seed(a.seed + 1)
    images = torch.rand(a.batch, 3, 300, 300, generator=g) * 2 - 1
    labels = torch.zeros(a.batch, priors, dtype=torch.long)
    locs = torch.zeros(a.batch, priors, 4)
    for b in range(a.batch):
        idx = torch.randint(0, priors, (12,), generator=g)
        labels[b, idx] = torch.randint(1, a.classes, (12,), generator=g)
        locs[b, idx] = torch.rand(12, 4, generator=g) * 2 - 1

    def step():
        opt.zero_grad()
        conf, loc = net(images)
        reg, cls = crit(conf, loc, labels, locs)
        loss = reg + cls
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    losses = [step() for _ in range(a.steps)]
    dt = time.perf_counter() - t0
    ips = a.batch * a.steps / dt
    if a.json:
        print(json.dumps({"peer": "torch", "version": torch.__version__, "batch": a.batch,
                          "threads": a.threads, "steps": a.steps, "seconds": dt,
                          "images_per_sec": ips, "last_loss": losses[-1]}))
    else:
        print(f"torch {torch.__version__} batch {a.batch} threads {a.threads}: {a.steps} steps in "
              f"{dt:.2f} s, {ips:.2f} images/s (loss {losses[-1]:.3f})")


if __name__ == "__main__":
    main()
