#!/usr/bin/env bash
# Fetch the pretrained face networks (tfjs weights manifests + .bin) from the
# npm package @vladmandic/face-api (MIT) with `npm pack`, check them against
# models/SHA256SUMS and put them in DEST (default models/).
#   scripts/fetch-models.sh [VERSION] [DEST]
set -euo pipefail
ver=${1:-1.7.15}
cd "$(dirname "$0")/.."
dest=${2:-models}
sums=$(pwd)/models/SHA256SUMS
files=$(awk '{print $2}' "$sums")
mkdir -p "$dest"
if (cd "$dest" && sha256sum --quiet -c "$sums" >/dev/null 2>&1); then
    exit 0
fi
command -v npm >/dev/null || { echo "fetch-models: npm is required (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@vladmandic/face-api@$ver" >/dev/null)
tar -xzf "$tmp/vladmandic-face-api-$ver.tgz" -C "$tmp" $(for f in $files; do echo "package/model/$f"; done)
for f in $files; do cp "$tmp/package/model/$f" "$dest/$f"; done
(cd "$dest" && sha256sum --quiet -c "$sums") || { echo "fetch-models: checksum mismatch" >&2; exit 1; }
echo "fetch-models: face-api $ver models in $dest"
