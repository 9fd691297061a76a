#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600) with the limits the reliability
# section of BENCHMARKS.md reports: 2 GB RSS, 10 s per input, inputs up to MAX_LEN bytes.
# Each target's corpus starts from its seeds; a crash is left in artifacts/<target>/ and
# must be copied to regressions/<target>/ (replayed by crates/cli/tests/fuzz_seeds.rs).
# Usage: bash fuzz/run_all.sh [SECONDS] [TARGET...]; logs in fuzz/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(model_file quant_file voc_xml image_decode detections study_toml onnx_import tf_graphdef)
fi
mkdir -p logs
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  case $t in
    onnx_import) cp seeds/*.onnx "corpus/$t/" ;;
    tf_graphdef) cp seeds/*.pb "corpus/$t/" ;;
    *) cp "seeds/$t/"* "corpus/$t/" ;;
  esac
  max_len=4096
  [ "$t" = image_decode ] && max_len=65536
  echo "== $t: ${secs} s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$t" "corpus/$t" -- \
    -max_total_time="$secs" -max_len="$max_len" -rss_limit_mb=2048 -timeout=10 \
    -malloc_limit_mb=2048 -artifact_prefix="artifacts/$t/" -print_final_stats=1 \
    > "logs/$t.log" 2>&1 || { echo "$t: FAILED (see fuzz/logs/$t.log)"; continue; }
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+.*DONE" "logs/$t.log" || true
done
