#!/usr/bin/env bash
# Benchmark of the C face networks against @vladmandic/face-api on tfjs
# (WASM backend) in node, in the same run, on the ORL faces
# (../shared/data/faces-orl): faces/s for detect + embed (OpenBLAS with 2
# threads), ORL 5/5 accuracy with the 128-d descriptors, memory figures.
#   bench/faces.sh [N_PEER_IMAGES]   (default 400, all of ORL)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
npeer=${1:-400}
nodedir=${TRAINING_NODE_DIR:-/tmp/training-node-deps}
orl=
for d in "${TRAINING_SHARED_DATA:-}" "$top/../shared/data" /work/shared/data; do
    if [ -n "$d" ] && [ -f "$d/faces-orl/s1/1.pgm" ]; then orl=$d/faces-orl; break; fi
done
[ -n "$orl" ] || { echo "ORL faces not found (set TRAINING_SHARED_DATA)" >&2; exit 1; }
scripts/fetch-models.sh >/dev/null
TRAINING_NODE_DIR=$nodedir test/deep/run.sh --setup-only
make -s bench/faces
for t in 2 1; do
    echo "== ours: C, OpenBLAS ($t thread(s)), same work as the peer"
    OPENBLAS_NUM_THREADS=$t bench/faces models "$orl" 60
done
echo "== ours: C, OpenBLAS (1 thread), as the face pipeline locates faces (adaptive input)"
OPENBLAS_NUM_THREADS=1 bench/faces models "$orl" -1
echo "== peer: face-api in node ($npeer images)"
NODE_PATH=$nodedir/node_modules node bench/faceapi-peer.js models "$orl" "$npeer" wasm 2>&1 |
    grep -v -e '^$' -e '====' -e 'TensorFlow.js in Node.js'
