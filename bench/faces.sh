#!/usr/bin/env bash
# Benchmark of the C face networks against @vladmandic/face-api on tfjs
# (WASM backend) in node, in the same run, on the ORL faces
# (../shared/data/faces-orl): faces/s of the face pipeline (detect, 68
# landmarks, aligned descriptor) on two cores and on one, the same for
# face-api's own detectAllFaces().withFaceLandmarks().withFaceDescriptors(),
# and the box descriptor without landmarks on both sides; ORL 5/5 accuracy
# with the 128-d descriptors, the networks' share of cblas_sgemm's peak.
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
rate() {  # rate COMMAND...: run it, show its output, keep its faces/s in $r
    "$@" 2>&1 | grep -v -e '^$' -e '====' -e 'TensorFlow.js in Node.js' > "$out"
    cat "$out"
    r=$(sed -n -e 's/^C faces\/s: *\([0-9.]*\).*/\1/p' -e 's/.*; \([0-9.]*\) faces\/s$/\1/p' "$out")
}
peer() { NODE_PATH=$nodedir/node_modules rate node bench/faceapi-peer.js models "$orl" "$npeer" wasm "$1"; }
ours() { OPENBLAS_NUM_THREADS=1 rate bench/faces models "$orl" "$@"; }

echo "== ours: the face pipeline (faces located as the pipeline does, landmarks, aligned descriptor),"
echo "   two images at once (two threads, OpenBLAS 1 thread each, as a training's two workers)"
ours -1 1 2; a2=$r
echo "== ours: the same, one image at a time"
ours -1 1 1; a1=$r
echo "== peer: face-api detectAllFaces().withFaceLandmarks().withFaceDescriptors() ($npeer images)"
peer 1; pa=$r
echo "== ours: face-api's way without landmarks (border 60, detector input 416, box descriptor), two at once"
ours 60 0 2; b2=$r
echo "== peer: the same work in face-api ($npeer images)"
peer 0; pb=$r
echo "== summary"
awk -v a2="$a2" -v a1="$a1" -v pa="$pa" -v b2="$b2" -v pb="$pb" 'BEGIN {
    printf "aligned pipeline: ours %.1f faces/s on 2 cores (%.1f on 1), face-api %.1f: %.1fx (%.1fx on 1 core)\n", a2, a1, pa, a2 / pa, a1 / pa
    printf "box descriptor:   ours %.1f faces/s on 2 cores, face-api %.1f: %.1fx\n", b2, pb, b2 / pb }'
