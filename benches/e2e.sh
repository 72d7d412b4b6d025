#!/usr/bin/env bash
# End-to-end benchmark: forewarn beside urlwatch, webchanges and the harness's asyncio
# yardstick, against a private nginx on loopback with ground truth (../shared/bench).
#
#   benches/e2e.sh              # N=1000, forewarn and the yardstick
#   benches/e2e.sh 10000        # N=10000
#   TOOLS=forewarn,urlwatch,ref-asyncio REPEATS=3 benches/e2e.sh 10000
#   PAGE_SCALE=0.1 benches/e2e.sh 100000     # small pages, for the 100k run
#
# Any knob of the harness (TOUCH_FRAC, MUTATE_FRAC, NGINX_IMS, ...) passes through.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
harness="${BENCH_HARNESS:-$here/../shared/bench/run.sh}"
[ -x "$harness" ] || { echo "benchmark harness not found at $harness (set BENCH_HARNESS)" >&2; exit 1; }
(cd "$here" && cargo build --release --locked)
export FOREWARN_BIN="$here/target/release/forewarn"
export TOOLS="${TOOLS:-forewarn,ref-asyncio}"
exec "$harness" "${1:-1000}"
