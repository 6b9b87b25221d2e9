#!/usr/bin/env bash
# The rate study of docs/rates.md: all five solvers plus the memoriser on experiment=rates,
# one Hydra multirun per solver (each solver's own sampling keys), into one folder, then
# the analysis. Usage: benchmarks/rates_study.sh [OUT_DIR] [N_JOBS]
set -euo pipefail
out=${1:-benchmarks/.runs/rates}
jobs=${2:-2}
export OMP_NUM_THREADS=1
declare -A extra=(
  [ddpm]="solver.sample_steps=100"      # 100 strided ancestral steps instead of 1000
  [lsb]=""                              # sde_steps 100 (its default)
  [pfode]=""                            # adaptive dopri5 (its default)
  [cfm]=""                              # minibatch OT coupling, dopri5 (its defaults)
  [jko]="solver.steps=40"               # per block (<= max_blocks = 8): 320 steps at most
)
for solver in ddpm lsb pfode cfm jko; do
  # shellcheck disable=SC2086
  nice -n 10 genbench -m experiment=rates solver=$solver ${extra[$solver]} \
    launcher=joblib hydra.launcher.n_jobs="$jobs" hydra.sweep.dir="$out/$solver" \
    cache_dir="${GENBENCH_CACHE:-/tmp/gb-rates-cache}" progress=false
done
genbench-rates "$out" --out "$out/report"
