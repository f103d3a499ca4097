#!/usr/bin/env bash
# ORL cropped tighter: every image loses INSET pixels on each side (default 8: 76 x 96), so the
# detector misses most faces and the whole image is the face region. Top-1 of the pure-C
# pipeline (bench/accuracy) with the aligned and the unaligned deep kinds, 5/5 and 1/9 splits:
# whether aligning a face crop the detector missed helps (docs/pipeline.md, aligned faces).
#   bash bench/orl_tight.sh [INSET]      (needs ../shared/data, python3 and make models)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
. "$top/bench/orl.sh"
inset=${1:-8}
work=$(mktemp -d /tmp/training-orl-tight.XXXXXX)
trap 'rm -rf "$work"' EXIT
scripts/fetch-models.sh >/dev/null
make -s bench/accuracy
python3 - "$orl" "$work" "$inset" <<'PY'
import os, re, sys
src, dst, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
for c in sorted(os.listdir(src)):
    if not os.path.isdir(os.path.join(src, c)):
        continue
    os.makedirs(os.path.join(dst, c))
    for f in os.listdir(os.path.join(src, c)):
        if not f.endswith('.pgm'):
            continue
        b = open(os.path.join(src, c, f), 'rb').read()
        m = re.match(rb'P5\s+(\d+)\s+(\d+)\s+(\d+)\s', b)
        w, h, data = int(m.group(1)), int(m.group(2)), b[m.end():]
        rows = b''.join(data[y * w + k:y * w + w - k] for y in range(k, h - k))
        open(os.path.join(dst, c, f), 'wb').write(b'P5\n%d %d\n255\n' % (w - 2 * k, h - 2 * k) + rows)
PY
for kind in face-api-resnet-aligned-v1 face-api-resnet-v1; do
    for split in 5/10 1/10; do
        printf '%-28s %-5s ' "$kind" "$split"
        OPENBLAS_NUM_THREADS=1 TR_FEATURES=$kind TR_MODELS=$top/models bench/accuracy "$work" face "$split" |
            sed -n 's/^pipeline *\(top-1 [^ ]* ([^)]*)\).*/\1/p'
    done
done
