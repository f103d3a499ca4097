#!/usr/bin/env bash
# Golden test of the C face networks (src/nn) against face-api's own
# JavaScript on tfjs's CPU backend: the same images through both, then
# test/deep/golden compares descriptors (cosine >= 0.9999), gender
# probabilities (1e-3), raw detector output and face boxes (IoU >= 0.98).
# Node packages go to $TRAINING_NODE_DIR (default /tmp/training-node-deps),
# never into the tree. ORL faces (../shared/data) add real faces and
# multi-face scenes; generated images alone are used when they are absent.
#   test/deep/run.sh   (VALGRIND=1: then once more under valgrind, one case of each kind)
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
faceapi=1.7.15 tfjs=4.22.0
nodedir=${TRAINING_NODE_DIR:-/tmp/training-node-deps}

scripts/fetch-models.sh "$faceapi" models >/dev/null
if [ ! -f "$nodedir/.ok-$faceapi-$tfjs" ]; then
    mkdir -p "$nodedir"
    (cd "$nodedir" && { [ -f package.json ] || echo '{"private": true}' > package.json; } &&
     npm install --silent --no-audit --no-fund "@vladmandic/face-api@$faceapi" \
        "@tensorflow/tfjs@$tfjs" "@tensorflow/tfjs-backend-wasm@$tfjs" >/dev/null)
    touch "$nodedir/.ok-$faceapi-$tfjs"
fi
[ "${1:-}" = --setup-only ] && exit 0

orl=
for d in "${TRAINING_SHARED_DATA:-}" "$top/../shared/data" /work/shared/data; do
    if [ -n "$d" ] && [ -f "$d/faces-orl/s1/1.pgm" ]; then orl=$d/faces-orl; break; fi
done
[ -n "$orl" ] || echo "note: ORL faces not found; golden test on generated images only (no scenes)"

out=$(mktemp -d /tmp/training-golden.XXXXXX)
trap 'rm -rf "$out"' EXIT
make -s test/deep/golden
# face-api's demo photos (in its npm package) as photos in the wild.
for f in "$nodedir"/node_modules/@vladmandic/face-api/demo/sample*.jpg; do
    if [ -f "$f" ]; then test/deep/golden --ppm "$f" "$out/wild-$(basename "$f" .jpg).ppm"; fi
done
NODE_PATH=$nodedir/node_modules node test/deep/golden.js models "$out" $orl 2>&1 | grep -v -e '^$' -e '====' -e 'TensorFlow.js in Node.js'
if [ "${VALGRIND:-0}" = 1 ]; then
    test/deep/golden models "$out"
    GOLDEN_ONE_PER_KIND=1 valgrind -q --error-exitcode=1 --leak-check=full test/deep/golden models "$out"
else
    test/deep/golden models "$out"
fi
