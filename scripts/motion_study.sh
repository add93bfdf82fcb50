#!/usr/bin/env bash
# The motion-degree study: the same network trained with motion degree 3 (velocity, acceleration,
# jerk), 1 (constant velocity) and 0 (static) on the same drives with the same budget, each
# evaluated on held-out drives where every actor accelerates, brakes, turns or zig-zags.
# Finished parts are kept; run again to complete an interrupted study.
#   STEPS=500 OUT=out/motion_study scripts/motion_study.sh                 # the CPU recipe, 500 steps
#   CONFIG=train-tiny-gpu-flow-gate.yaml MINUTES=6 PARALLEL=1 DEGREES="3 1" SEEDS="21 22 11" \
#     OUT=out/motion_study_gpu scripts/motion_study.sh                     # one GPU, degrees side by side
# CONFIG: a training recipe (a shipped name or a path); STEPS or MINUTES: the budget of each run
# (MINUTES > 0: training time, steps unbounded); TRAIN_SEED: the training seed; DRIVES: training
# drives (default: the recipe's); SEEDS: held-out
# drives (world seeds, SECONDS_HELD_OUT long); PARALLEL=1 trains the degrees at the same time (one GPU has
# room for several small runs; on 2 CPU cores it only splits them).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-train-tiny.yaml}
STEPS=${STEPS:-500}
MINUTES=${MINUTES:-0}
DEGREES=${DEGREES:-3 1 0}
SEEDS=${SEEDS:-21}
SECONDS_HELD_OUT=${SECONDS_HELD_OUT:-6}
TRAIN_SEED=${TRAIN_SEED:-0}
PARALLEL=${PARALLEL:-0}
DRIVES=${DRIVES:-}
OUT=${OUT:-out/motion_study}
. build/env.sh
mkdir -p "$OUT"
if [ "$MINUTES" != 0 ]; then budget=(--minutes "$MINUTES" --steps 100000000); else budget=(--steps "$STEPS" --minutes 0); fi
[ -z "$DRIVES" ] || budget+=(--drives "$DRIVES")

train() {  # degree
  [ -f "$OUT/degree$1/summary.json" ] && return 0
  # a run cut short is continued, not started again
  resume=(); [ -f "$OUT/degree$1/state.pt" ] && resume=(--resume)
  slarm train --config "$CONFIG" --out "$OUT/degree$1" --motion-degree "$1" --seed "$TRAIN_SEED" "${budget[@]}" \
    "${resume[@]}" > "$OUT/degree$1.log" 2>&1 || { echo "training degree $1 failed: see $OUT/degree$1.log" >&2; return 1; }
}

failed=0
if [ "$PARALLEL" = 1 ]; then
  pids=(); for degree in $DEGREES; do train "$degree" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
else
  for degree in $DEGREES; do train "$degree" || failed=1; done
fi
[ "$failed" = 0 ] || exit 1

for seed in $SEEDS; do
  bag="$OUT/bags/seed$seed"
  [ -d "$bag" ] || slarm world make --out "$bag" --seconds "$SECONDS_HELD_OUT" --seed "$seed" --non-uniform-share 1.0
  runs=()
  for degree in $DEGREES; do
    # scored on each network's own motion: slarm-tiny's static_speed would hold slow Gaussians still,
    # and its smoothing share motion between neighbours
    [ -f "$OUT/degree$degree/own-motion.safetensors" ] || \
      slarm reconfigure "$OUT/degree$degree/model.safetensors" "$OUT/degree$degree/own-motion.safetensors" \
        static_speed=0 motion_smoothing_radius=0
    [ -f "$OUT/eval$degree-seed$seed/metrics.json" ] || \
      slarm eval --bag "$bag" --checkpoint "$OUT/degree$degree/own-motion.safetensors" --out "$OUT/eval$degree-seed$seed"
    case $degree in 3) label="degree 3 (SLARM)";; 1) label="degree 1 (STORM)";; 0) label="degree 0 (static)";;
                    *) label="degree $degree";; esac
    runs+=("$label=$OUT/eval$degree-seed$seed")
  done
  slarm compare "${runs[@]}" --out "$OUT/table-seed$seed.md"
done
