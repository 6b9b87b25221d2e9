#!/usr/bin/env bash
# The dimension study of docs/rates.md: five solvers on experiment=dims, both arms (d* = 2
# with D = 16, 64, 128; D = 64 with d* = 1, 4), into one folder, then the analysis.
# Usage: benchmarks/dims_study.sh [OUT_DIR] [N_JOBS] [SEEDS]
set -euo pipefail
out=${1:-benchmarks/.runs/dims}
jobs=${2:-2}
seeds=${3:-0}
export OMP_NUM_THREADS=1
declare -A extra=(
  [ddpm]="solver.sample_steps=100"      # 100 strided ancestral steps instead of 1000
  [lsb]="" [pfode]="" [cfm]=""
  [jko]="solver.steps=25"               # per block (<= max_blocks = 8): 200 steps at most
)
for solver in ddpm lsb pfode cfm jko; do
  for arm in "dataset.intrinsic_dim=2" "dataset.ambient_dim=64 dataset.intrinsic_dim=1,4"; do
    # shellcheck disable=SC2086
    nice -n 10 genbench -m experiment=dims solver=$solver ${extra[$solver]} $arm seed="$seeds" \
      launcher=joblib hydra.launcher.n_jobs="$jobs" \
      hydra.sweep.dir="$out/$solver-${arm//[ =,.]/_}" \
      cache_dir="${GENBENCH_CACHE:-/tmp/gb-rates-cache}" progress=false
  done
done
genbench-rates "$out" --x dims --out "$out/report"
