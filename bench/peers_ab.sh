#!/usr/bin/env bash
# Two floorstream revisions and the naive-python yardstick through the shared peers harness,
# interleaved in one invocation (naive, A, B, naive, A, B, ...), SUT pinned to CPU 1.
#
#   bench/peers_ab.sh [REV_A] [SRC_B]
#
# REV_A: a git revision of this repo (default HEAD), exported to $BENCH_WORK/rev-a and run
# with PYTHONPATH pointing at its src/; SRC_B: a checkout to run as B (default: this working
# tree). Both use this repo's .venv and B's bench/peers_sut.py (SUT_SCRIPT: the workload's
# config and line format are not what is compared). Why not run_peers.sh: it takes one SUT
# per run, so the two revisions would see different machine load (the machine is shared);
# here every repetition runs all three back to back on one broker.
#
# Environment: BENCH_WORK (default /tmp/fsbench-ab), BENCH_PORT (default 18940, its own
# broker so it never meets a harness run on 18830), PEERS (default /work/shared/peers),
# REPS (3), QOS ("0 1"), PHASE (paced | drain), RATE (5000), LIMIT (50000).
# Output: the harness's per-run lines, then its summary table.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-/work/shared/peers}
WORK=${BENCH_WORK:-/tmp/fsbench-ab}
PORT=${BENCH_PORT:-18940}
REPS=${REPS:-3}
QOS=${QOS:-"0 1"}
PHASE=${PHASE:-paced}
RATE=${RATE:-5000}
LIMIT=${LIMIT:-50000}
REV_A=${1:-HEAD}
SRC_B=${2:-$HERE}
PY=$HERE/.venv/bin/python
# one harness adapter for both: the daemon's config and line format are the workload, not
# what is compared
SUT_SCRIPT=${SUT_SCRIPT:-$SRC_B/bench/peers_sut.py}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$WORK"

# the harness's own venv (paho-mqtt 2, psutil) and data, as run_peers.sh makes them
if ! "$WORK/venv/bin/python" -c 'import paho.mqtt, psutil' 2>/dev/null; then
  python3 -m venv "$WORK/venv" && "$WORK/venv/bin/pip" install -q "paho-mqtt>=2,<3" psutil
fi
[ -f "$WORK/data/stream.tsv" ] || "$WORK/venv/bin/python" "$PEERS/gen_stream.py" --outdir "$WORK/data" >/dev/null

rm -rf "$WORK/rev-a" && mkdir -p "$WORK/rev-a"
git -C "$HERE" archive "$REV_A" src bench | tar -x -C "$WORK/rev-a"

conf=$WORK/broker-$PORT.conf
if [ "$PHASE" = drain ]; then base=$PEERS/conf/mosquitto-lossless.conf; else base=$PEERS/conf/mosquitto.conf; fi
sed "s/^listener 18830 /listener $PORT /" "$base" > "$conf"
taskset -c 0 mosquitto -c "$conf" >>"$WORK/broker.log" 2>&1 </dev/null &
BROKER=$!
trap 'kill $BROKER 2>/dev/null || true; wait $BROKER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  mosquitto_sub -h 127.0.0.1 -p "$PORT" -t '$SYS/broker/version' -C 1 -W 1 >/dev/null 2>&1 && break
  sleep 0.1
done

results=$WORK/results-$STAMP.jsonl
extra=()
if [ "$PHASE" = drain ]; then extra=(--drain); else extra=(--rate "$RATE" --limit "$LIMIT"); fi
BENCH_WORK=$WORK "$WORK/venv/bin/python" "$PEERS/bench.py" run --phase "$PHASE" "${extra[@]}" \
  --port "$PORT" --data "$WORK/data" --qos $QOS --reps "$REPS" --pin-sut 1 --pin-pub 0 \
  --outdir "$WORK/runs-$STAMP" --results "$results" \
  --sut "naive-python=lines:exec $WORK/venv/bin/python $PEERS/systems/naive_pipeline.py" \
  --sut "fs-a=lines:cd $WORK/rev-a && PYTHONPATH=$WORK/rev-a/src exec $PY $SUT_SCRIPT" \
  --sut "fs-b=lines:cd $SRC_B && PYTHONPATH=$SRC_B/src exec $PY $SUT_SCRIPT"
"$WORK/venv/bin/python" "$PEERS/bench.py" summarize --results "$results"
echo "results: $results" >&2
