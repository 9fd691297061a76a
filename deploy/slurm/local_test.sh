#!/usr/bin/env bash
# Tests the Slurm recipe for real on one machine (as root, Debian): installs slurm-wlm and
# munge if missing, starts munged, slurmctld and slurmd on localhost, submits a 2-shard
# study (deploy/slurm/study-array.sbatch) as an array job on a small synthetic dataset,
# merges the shards and checks the merged accuracy columns against an unsharded run.
# Not part of CI (it installs system packages and starts daemons).
# Usage: bash deploy/slurm/local_test.sh [path/to/slimdet]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
slimdet=$(realpath "${1:-$repo/target/release/slimdet}")
[ -x "$slimdet" ] || { echo "build first: cargo build --release"; exit 2; }
command -v sbatch > /dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge

host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=slimdet-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
[ -s /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2> /dev/null; }
chown -R munge:munge /etc/munge /run/munge 2> /dev/null || true
chmod 400 /etc/munge/munge.key
pgrep -x munged > /dev/null || munged --force
pgrep -x slurmctld > /dev/null || slurmctld
pgrep -x slurmd > /dev/null || slurmd
for _ in $(seq 30); do sinfo -h -o %T 2> /dev/null | grep -qE "idle|mix" && break; sleep 1; done
sinfo

work=$(mktemp -d /tmp/slimdet-slurm.XXXXXX)
"$slimdet" dataset synth -o "$work/synth" --train 16 --test 24 --threads 2 > /dev/null
"$slimdet" init --classes "$work/synth/labels.txt" --width 0.5 --seed 3 -o "$work/m.safetensors" > /dev/null
args="--quick --voc $work/synth --model $work/m.safetensors"

echo "== array job: 2 shards"
STUDY_DIR=$work/study SLIMDET=$slimdet STUDY_ARGS=$args \
  sbatch --wait --array=0-1 --cpus-per-task=1 --chdir="$work" "$repo/deploy/slurm/study-array.sbatch"
"$slimdet" study merge "$work"/study/shard-* -o "$work/merged" --no-report

echo "== unsharded reference"
# shellcheck disable=SC2086
"$slimdet" study $args --threads 2 --out "$work/whole" --no-report 2> /dev/null

python3 - "$work/merged" "$work/whole" <<'PY'
import csv, glob, sys
def acc(d):
    rows = list(csv.DictReader(open(glob.glob(d + "/*_study.csv")[0])))
    keep = [c for c in rows[0] if c in ("variant", "map", "images", "quant", "prune_level") or c.startswith("ap_")]
    return [[r[c] for c in keep] for r in rows]
a, b = acc(sys.argv[1]), acc(sys.argv[2])
assert a == b, f"merged {a} != unsharded {b}"
print(f"merged shards equal the unsharded run: {len(a)} variants, accuracy columns identical")
PY
echo "logs and results: $work"
