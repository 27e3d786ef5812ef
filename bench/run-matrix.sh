#!/usr/bin/env bash
# Reproduces the committed benchmark matrix in one command: every model of
# iomodels and every peer of ../shared/peers, at 1, 10, 100 and 1000
# connections, 64- and 4096-byte requests. Reports and charts go to
# bench/results/<today>/ (or --out DIR); an existing report there is kept
# unless --force is given. Extra flags go to `bench matrix`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Python peers need gevent and uvloop.
python3 -c 'import gevent, uvloop' 2>/dev/null || pip install -q -r ../shared/peers/requirements.txt
cargo build --release --quiet
exec target/release/iomodels bench matrix --models all --peers shared "$@"
