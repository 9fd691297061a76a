#!/usr/bin/env bash
# aarch64 (Raspberry Pi 4 and 5): cross-build with Debian's rustc-web and its aarch64 std,
# then run under QEMU user mode as a Cortex-A72 (Pi 4: NEON) and a Cortex-A76 (Pi 5: NEON
# + dot product): the kernel conformance tests, the golden model tests (MobileNetV2-SSD-Lite,
# MobileNetV1-SSD(-Lite) and UltraFace against PyTorch/ONNX Runtime, the TF SSDLite import),
# and `detect` on a photo with the f32 and an int8 model, whose detections must equal the x86
# binary's.
# Expects the x86 release build of .ci/run (target/release/slimdet). README: "Run on a
# Raspberry Pi".
set -euo pipefail
cd "$(dirname "$0")/.."
T=aarch64-unknown-linux-gnu

echo "== aarch64 toolchain (apt: rustc-web, its aarch64 std, gcc cross linker, qemu-user)"
if [ ! -d /usr/lib/rustlib/$T ] || ! command -v qemu-aarch64 >/dev/null \
  || ! command -v aarch64-linux-gnu-gcc >/dev/null || [ ! -x /usr/bin/rustc ]; then
  dpkg --add-architecture arm64
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    rustc-web cargo-web libstd-rust-web-dev:arm64 rust-web-clippy \
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user qemu-user-binfmt >/dev/null
fi
/usr/bin/rustc --version
# The dispatch test re-executes its own binary: register QEMU with binfmt_misc if we can.
if [ -w /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null; then
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] \
    || cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register 2>/dev/null || true
fi
SKIP=()
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  echo "binfmt_misc unavailable: skipping dispatch::slimdet_kernels_env_forces_the_tier (it spawns an aarch64 child)"
  SKIP=(--skip dispatch::slimdet_kernels_env_forces_the_tier)
fi

# Debian's 1.96 compiler (its std is the aarch64 one installed above); a target folder of
# its own so that its artifacts never mix with the host toolchain's.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_DIR="$PWD/target/aarch64-cross"

echo "== clippy for aarch64 (the kernels crate holds all architecture-specific code)"
PATH=/usr/bin:$PATH cargo clippy --release --target $T -p slimdet-kernels --all-targets -- -D warnings

echo "== build for aarch64: tests of kernels and models, and the slimdet binary"
cargo build --release --target $T -p slimdet-kernels -p slimdet-models --tests
cargo build --release --target $T -p slimdet-cli
D=$CARGO_TARGET_DIR/$T/release
test_bin() { ls -t "$D"/deps/"$1"-* | grep -v '\.d$' | head -1; }
A=$D/slimdet
X=$PWD/target/release/slimdet

echo "== int8 model for the detect comparison (quantized on x86)"
Q=$(mktemp -d)
$X quantize --calib-voc datasets/voc2007 --calib-split train100 --calib-images 16 \
  --granularity channel -o "$Q/int8.safetensors" 2>/dev/null
P=datasets/voc2007/VOC2007/JPEGImages/000001.jpg
$X detect "$P" --threshold 0.2 > "$Q/f32-x86.json"
$X detect "$P" -m "$Q/int8.safetensors" > "$Q/int8-x86.json"

for cpu in cortex-a72 cortex-a76; do
  echo "== QEMU $cpu: kernel conformance"
  (cd crates/kernels && QEMU_CPU=$cpu qemu-aarch64 -cpu $cpu "$(test_bin conformance)" "${SKIP[@]}")
  echo "== QEMU $cpu: golden models"
  for t in golden_mb2 golden_ultraface golden_tf_ssdlite golden_zoo; do
    # VGG16-SSD (31 GMACs a photo) is left to the x86 run: too slow to emulate here.
    (cd crates/models && qemu-aarch64 -cpu $cpu "$(test_bin $t)" --skip vgg16)
  done
  echo "== QEMU $cpu: detect equals the x86 binary's (f32 within 1e-4, int8 byte for byte)"
  qemu-aarch64 -cpu $cpu "$A" detect "$P" --threshold 0.2 > "$Q/f32-$cpu.json"
  python3 .ci/same_detections.py "$Q/f32-x86.json" "$Q/f32-$cpu.json" 1e-4
  qemu-aarch64 -cpu $cpu "$A" detect "$P" -m "$Q/int8.safetensors" > "$Q/int8-$cpu.json"
  cmp "$Q/int8-x86.json" "$Q/int8-$cpu.json"
  echo "int8 detections identical ($(grep -c '"label"' "$Q/int8-x86.json") detections)"
done
rm -rf "$Q"
