#!/usr/bin/env bash
# The time-to-a-verdict measurements on a GPU: OT-CFM with the plan prefetched vs inline vs
# torchcfm, and K seeds trained together (vmap) vs one seed, every tensor on the device.
# Results merge into benchmarks/results/perf.{json,md} under the section "time_cuda".
#
#   bash benchmarks/perf_cuda.sh                # cuda:0, 3 rounds (~3-5 min on one GPU)
#   DEVICE=cuda:1 ROUNDS=5 bash benchmarks/perf_cuda.sh
#
# Needs: a CUDA build of torch, the package installed (pip install -e '.[test]'), and for
# the peer `pip install --no-deps torchcfm`. What to expect: docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-cuda}"
ROUNDS="${ROUNDS:-3}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
python - <<PY
import sys, torch
if not torch.cuda.is_available():
    sys.exit("perf_cuda.sh: torch.cuda.is_available() is False (a CPU build of torch, or no GPU)")
print("GPU:", torch.cuda.get_device_name(torch.device("$DEVICE")), "| torch", torch.__version__)
PY
python benchmarks/perf.py --sections time --device "$DEVICE" --time-rounds "$ROUNDS" \
    --time-threads 1 --note "GPU run: $DEVICE"
# A host-sync check on the device: the training loops must not read back per step.
python - <<PY
import torch
from genbench.core.solver import get_solver_class
from genbench.core.ensemble import train_together
device = torch.device("$DEVICE")
z = torch.randn(4096, 2, device=device)
torch.cuda.set_sync_debug_mode("warn")  # prints a warning at each synchronising call
for name in ("ddpm", "cfm"):
    solvers = [get_solver_class(name)(2, {"steps": 60, "log_every": 50}).to(device)
               for _ in range(3)]
    train_together(solvers, [z] * 3)
    print(name, "3 seeds together: done (syncs, if any, were warned above)")
torch.cuda.set_sync_debug_mode("default")
PY
