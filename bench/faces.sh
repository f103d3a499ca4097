#!/usr/bin/env bash
# Benchmark of the C face networks against @vladmandic/face-api on tfjs
# (WASM backend) in node, in the same run, on the ORL faces
# (../shared/data/faces-orl): faces/s of the face pipeline (detect, 68
# landmarks, aligned descriptor) on two cores and on one, the same for
# face-api's own detectAllFaces().withFaceLandmarks().withFaceDescriptors(),
# and the box descriptor without landmarks on both sides; ORL 5/5 accuracy
# with the 128-d descriptors, the networks' share of cblas_sgemm's peak.
# Each side runs BENCH_ROUNDS times (default 3), alternating; the summary gives the median
# and the range. The first line of each of our runs names the OpenBLAS kernels.
#   bench/faces.sh [N_PEER_IMAGES]   (default 200 of ORL's 400)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
npeer=${1:-200}
nodedir=${TRAINING_NODE_DIR:-/tmp/training-node-deps}
orl=
for d in "${TRAINING_SHARED_DATA:-}" "$top/../shared/data" /work/shared/data; do
    if [ -n "$d" ] && [ -f "$d/faces-orl/s1/1.pgm" ]; then orl=$d/faces-orl; break; fi
done
[ -n "$orl" ] || { echo "ORL faces not found (set TRAINING_SHARED_DATA)" >&2; exit 1; }
scripts/fetch-models.sh >/dev/null
TRAINING_NODE_DIR=$nodedir test/deep/run.sh --setup-only
make -s bench/faces
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rounds=${BENCH_ROUNDS:-3}
round=1
rate() {  # rate COMMAND...: run it, keep its faces/s in $r; show its output in the first round
    "$@" 2>&1 | grep -v -e '^$' -e '====' -e 'TensorFlow.js in Node.js' > "$out"
    if [ "$round" = 1 ]; then cat "$out"; else grep -e 'faces/s' "$out"; fi
    r=$(sed -n -e 's/^C faces\/s: *\([0-9.]*\).*/\1/p' -e 's/.*; \([0-9.]*\) faces\/s$/\1/p' "$out")
}
peer() { NODE_PATH=$nodedir/node_modules rate node bench/faceapi-peer.js models "$orl" "$npeer" wasm "$1"; }
ours() { OPENBLAS_NUM_THREADS=1 rate bench/faces models "$orl" "$@"; }
# OpenBLAS picks its kernels from the CPU unless OPENBLAS_CORETYPE names them; when the
# environment names them, ours also run once per round with OpenBLAS's own choice.
own=${OPENBLAS_CORETYPE:+1}
a2=() a1=() pa=() ao=() b2=() pb=()
for round in $(seq "$rounds"); do
    echo "==== round $round of $rounds"
    echo "== ours: the face pipeline (faces located as the pipeline does, landmarks, aligned descriptor),"
    echo "   two images at once (two threads, OpenBLAS 1 thread each, as a training's two workers)"
    ours -1 1 2; a2+=("$r")
    echo "== ours: the same, one image at a time"
    ours -1 1 1; a1+=("$r")
    if [ -n "$own" ]; then
        echo "== ours: two at once, OPENBLAS_CORETYPE unset (OpenBLAS's own choice of kernels)"
        env -u OPENBLAS_CORETYPE OPENBLAS_NUM_THREADS=1 bash -c 'bench/faces "$@" 2>&1 | sed -n "1p; /faces\/s/p"' _ \
            models "$orl" -1 1 2 > "$out"
        cat "$out"; ao+=("$(sed -n 's/^C faces\/s: *\([0-9.]*\).*/\1/p' "$out")")
    fi
    echo "== peer: face-api detectAllFaces().withFaceLandmarks().withFaceDescriptors() ($npeer images)"
    peer 1; pa+=("$r")
    echo "== ours: face-api's way without landmarks (border 60, detector input 416, box descriptor), two at once"
    ours 60 0 2; b2+=("$r")
    echo "== peer: the same work in face-api ($npeer images)"
    peer 0; pb+=("$r")
done
# median [lowest-highest] of the rounds
stat() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.1f [%.1f-%.1f]", m, v[1], v[NR] }'; }
med() { stat "$@" | cut -d' ' -f1; }
kernels=${OPENBLAS_CORETYPE:-"chosen by OpenBLAS"}
echo "==== summary: median of $rounds rounds [lowest-highest], OpenBLAS kernels: $kernels"
echo "aligned pipeline: ours $(stat "${a2[@]}") faces/s on 2 cores, $(stat "${a1[@]}") on 1; face-api $(stat "${pa[@]}")"
awk -v a2="$(med "${a2[@]}")" -v a1="$(med "${a1[@]}")" -v pa="$(med "${pa[@]}")" 'BEGIN {
    printf "                  ours / face-api: %.1fx on 2 cores, %.1fx on 1\n", a2 / pa, a1 / pa }'
[ -z "$own" ] || echo "                  ours on 2 cores with OpenBLAS's own choice of kernels: $(stat "${ao[@]}") faces/s"
echo "box descriptor:   ours $(stat "${b2[@]}") faces/s on 2 cores; face-api $(stat "${pb[@]}")"
awk -v b2="$(med "${b2[@]}")" -v pb="$(med "${pb[@]}")" 'BEGIN { printf "                  ours / face-api: %.1fx\n", b2 / pb }'
