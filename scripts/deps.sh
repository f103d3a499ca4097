#!/usr/bin/env bash
# Install build and test dependencies from Debian's archive (as root).
set -euo pipefail
pkgs=(build-essential postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
      postgresql-15-cron postgresql-15-auto-failover libipc-run-perl libopenblas-dev uuid-dev libjpeg62-turbo-dev
      libpng-dev libpq-dev valgrind libcjson-dev python3-sqlalchemy python3-psycopg2
      pkgconf clang-14 libclang-rt-14-dev)   # pkg-config for the Makefile; libFuzzer with ASan/UBSan (make fuzz)
# npm fetches the face networks (scripts/fetch-models.sh) and the golden test's peer.
command -v npm >/dev/null || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
