#!/bin/sh
# make-corpus.sh OUTDIR - writes the fuzz seed corpus into OUTDIR/corpus-decode,
# OUTDIR/corpus-model and OUTDIR/corpus-weights (seed-* files; other files there,
# e.g. inputs the fuzzers found, are kept). Builds test/fuzz/gen-seeds.c against
# the pure core, libjpeg and libpng; nothing is downloaded. CC defaults to cc.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$1
mkdir -p "$out/corpus-decode" "$out/corpus-model" "$out/corpus-weights"
rm -f "$out"/corpus-decode/seed-* "$out"/corpus-model/seed-* "$out"/corpus-weights/seed-*
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The pure core (the Makefile passes CORE_SRCS, the sources of src/core/libtrcore.a);
# standalone: the sources of the core library, src/core.
core=${CORE_SRCS:-$(cd "$top" && ls src/core/*.c src/core/nn/*.c)}
srcs=
for s in $core; do srcs="$srcs $top/$s"; done
libs="openblas libjpeg libpng libcjson"
${CC:-cc} -O1 -g -std=gnu11 -w -I "$top/src/core" $(pkg-config --cflags $libs) \
	-o "$tmp/gen-seeds" "$here/gen-seeds.c" $srcs $(pkg-config --libs $libs) -lm
"$tmp/gen-seeds" "$out"
echo "seed corpus: $(ls "$out"/corpus-decode/seed-* | wc -l) images," \
	"$(ls "$out"/corpus-model/seed-* | wc -l) models," \
	"$(ls "$out"/corpus-weights/seed-* | wc -l) weight sets in $out"
