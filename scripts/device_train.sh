#!/usr/bin/env bash
# Train the learned codec on a lent GPU machine (the `device` tool), in calls of <= 10 minutes.
#
# Here, once: `scripts/device_train.sh pack` fills two folders that .git/info/exclude ignores and
# that each call names in `carry`:
#   .whl/        compressai 1.2.8 (cp312) and pytorch-msssim wheels: the device's Python is 3.12
#   .gpu/train/  a subset of ../shared/data/train (sources interleaved) with its manifest.tsv,
#                at most 45 MiB, so that the working tree stays under the 64 MiB a call carries
# Then, on the device:
#   STEPS=N LR=x scripts/device_train.sh start   install, start (or resume) training in the background
#   scripts/device_train.sh wait SECONDS          print progress for SECONDS, then export to $OUT
#   scripts/device_train.sh restart               after changing STEPS: resume with the new schedule
# Training continues from the shipped weights (`--init`), same N and M; the checkpoint lives in
# /tmp/run on the device (it survives between calls while the machine is held).
set -euo pipefail
RUN=${RUN:-/tmp/run}
PY=${PY:-python3}
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
cmd=${1:?pack, start, restart or wait}

launch() {
  mkdir -p $RUN
  cat >$RUN/train.py <<PY
import logging
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
from taskcodec.codec.learned.train import TrainConfig, train
train(TrainConfig(data=".gpu/train", out="$RUN", steps=${STEPS:-30000}, batch=${BATCH:-16},
                  crop=${CROP:-256}, lr=${LR:-2e-4}, M=192, checkpoint_every=500, log_every=250,
                  init="taskcodec/codec/learned/weights/gmsh-n64-m192.safetensors"))
PY
  setsid nohup $PY $RUN/train.py >>$RUN/log 2>&1 &
  echo "started: steps ${STEPS:-30000}"
}

case $cmd in
pack)
  for d in /.whl/ /.gpu/; do grep -qx "$d" .git/info/exclude 2>/dev/null || echo "$d" >>.git/info/exclude; done
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_34_x86_64 --platform any -d .whl compressai==1.2.8 pytorch-msssim==1.0.0
  python3 - <<'PY'
import os, shutil
from itertools import zip_longest
src, dst, budget = "../shared/data/train", ".gpu/train", 45 * 2**20
head, *rows = [l for l in open(f"{src}/manifest.tsv").read().splitlines() if l.strip()]
by_source = {}
for r in rows:
    by_source.setdefault(r.split("\t")[3], []).append(r)
order = [r for group in zip_longest(*by_source.values()) for r in group if r]  # interleave the sources
kept, total = [], 0
for r in order:
    p = r.split("\t")[0]
    size = os.path.getsize(f"{src}/{p}")
    if total + size <= budget:
        os.makedirs(os.path.dirname(f"{dst}/{p}"), exist_ok=True)
        shutil.copy(f"{src}/{p}", f"{dst}/{p}")
        kept.append(r); total += size
open(f"{dst}/manifest.tsv", "w").write("\n".join([head, *kept]) + "\n")
print(f"{len(kept)} images, {total / 2**20:.1f} MiB in {dst}")
PY
  ;;
start)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
  launch
  ;;
restart)
  pkill -f "$RUN/train.py" || true
  sleep 3
  launch
  ;;
wait)
  end=$((SECONDS + ${2:-60}))
  while [ $SECONDS -lt $end ] && pgrep -f "$RUN/train.py" >/dev/null; do sleep 15; done
  grep -E "step|resumed|initialised|Error|error" $RUN/log | tail -n 8 || true
  if [ -f $RUN/checkpoint.safetensors ]; then
    $PY - <<PY
import json
from safetensors import safe_open
from taskcodec.codec.learned.weights import export_checkpoint
with safe_open("$RUN/checkpoint.safetensors", "pt") as f:
    meta = json.loads(f.metadata()["meta"])
json.dump(meta["history"], open("$OUT/history.json", "w"))
cfg = meta["config"]
export_checkpoint("$RUN/checkpoint.safetensors", "/tmp/weights.safetensors",
                  {"steps_gpu": meta["step"], "batch": cfg["batch"], "crop": cfg["crop"], "lr": cfg["lr"]})
print("exported step", meta["step"])
PY
    split -b 15M /tmp/weights.safetensors $OUT/weights.part-
    cp $RUN/log $OUT/train.log
  fi
  ;;
esac
