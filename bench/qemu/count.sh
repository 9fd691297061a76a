#!/usr/bin/env bash
# Executed aarch64 instructions of one forward pass per kernel tier, under QEMU (the stand-in
# for timing on a Raspberry Pi: QEMU's wall time says nothing about a real core).
#   bench/qemu/count.sh AARCH64_SLIMDET MODEL [MODEL...]
# For each model and tier (scalar, neon, neon-dotprod) it counts `slimdet bench --runs 1` and
# `--runs 3` (no warm-up, 1 thread) on a Cortex-A76 and prints (count3 - count1) / 2: the
# instructions of one forward pass, model loading and set-up cancelled out.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
plugin=$(mktemp -d)/insn_count.so
gcc -O2 -shared -fPIC -o "$plugin" "$here/insn_count.c"
bin=$1
shift
count() {
  SLIMDET_KERNELS=$1 qemu-aarch64 -cpu cortex-a76 -plugin "$plugin" -d plugin "$bin" bench \
    -m "$2" --runs "$3" --warmup 0 --threads 1 2>&1 | awk '/^insns:/ {print $2}'
}
printf '%-40s %-13s %16s\n' model tier insns/forward
for m in "$@"; do
  for t in scalar neon neon-dotprod; do
    one=$(count $t "$m" 1)
    three=$(count $t "$m" 3)
    printf '%-40s %-13s %16d\n' "$(basename "$m")" $t $(((three - one) / 2))
  done
done
