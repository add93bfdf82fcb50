#!/usr/bin/env bash
# The motion-degree study: the same network trained with motion degree 3 (velocity, acceleration,
# jerk), 1 (constant velocity) and 0 (static) on the same drives for the same number of steps, each
# evaluated on a held-out drive where every actor accelerates, brakes, turns or zig-zags.
# Finished parts are kept; run again to complete an interrupted study.
#   STEPS=500 OUT=out/motion_study scripts/motion_study.sh
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-500}
OUT=${OUT:-out/motion_study}
SEED=${SEED:-21}
. build/env.sh
mkdir -p "$OUT"
[ -d "$OUT/bag" ] || slarm world make --out "$OUT/bag" --seconds 6 --seed "$SEED" --non-uniform-share 1.0
for degree in 3 1 0; do
  [ -f "$OUT/degree$degree/summary.json" ] || \
    slarm train --config train-tiny.yaml --out "$OUT/degree$degree" --motion-degree "$degree" --steps "$STEPS" --minutes 0
  # scored on each network's own motion: slarm-tiny's static_speed would hold slow Gaussians still,
  # and its smoothing share motion between neighbours
  [ -f "$OUT/degree$degree/own-motion.safetensors" ] || \
    slarm reconfigure "$OUT/degree$degree/model.safetensors" "$OUT/degree$degree/own-motion.safetensors" \
      static_speed=0 motion_smoothing_radius=0
  [ -f "$OUT/eval$degree/metrics.json" ] || \
    slarm eval --bag "$OUT/bag" --checkpoint "$OUT/degree$degree/own-motion.safetensors" --out "$OUT/eval$degree"
done
slarm compare "degree 3 (SLARM)=$OUT/eval3" "degree 1 (STORM)=$OUT/eval1" "degree 0 (static)=$OUT/eval0" \
  --out "$OUT/table.md"
