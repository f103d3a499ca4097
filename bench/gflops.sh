#!/usr/bin/env bash
# GFLOP/s of the training loop next to cblas_sgemm's peak, measured in the same run (bench/gflops.c).
#   bash bench/gflops.sh [ROWS [DIM [CLASSES]]]
set -euo pipefail
cd "$(dirname "$0")/.."
make -s bench/gflops
bench/gflops "$@"
