#!/usr/bin/env bash
# Projection lag against write rate on cqrs-async: finds the maximum sustainable write rate
# (closed loop), then runs open loop at 10%, 25%, 50%, 75% and 100% of it and prints write p99,
# lag p50/p99 and their ratio at each step. The goal line is the 50% step.
#
#   benches/lag-curve.sh [DB_URL]          (default: SQLite files in a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
db=("${1:+--db}" "${1:-}")
[ -n "${1:-}" ] || db=()
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet
bin=target/release/cqrs-bench
scenario=scenarios/lag-curve.toml

"$bin" run "$scenario" "${db[@]}" --schema lag_curve --write-rate max --quiet --out "$work/max" > /dev/null
max=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["runs"][0]["rates"]["write_achieved"])' "$work/max/results.json")
printf 'maximum sustainable write rate (closed loop, 4 workers): %.0f/s\n\n' "$max"
printf '%6s %10s %10s %10s %10s %12s %s\n' share "rate/s" "write p99" "lag p50" "lag p99" "lag/write" note
for pct in 10 25 50 75 100; do
    rate=$(python3 -c "print(round($max * $pct / 100, 1))")
    "$bin" run "$scenario" "${db[@]}" --schema lag_curve --write-rate "$rate" --quiet --out "$work/$pct" > /dev/null
    python3 - "$work/$pct/results.json" "$pct" "$rate" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["runs"][0]
w = r["metrics"]["ops"]["write"]["latency"]["p99_us"] / 1000
l50 = r["metrics"]["lag"]["p50_us"] / 1000
l99 = r["metrics"]["lag"]["p99_us"] / 1000
m = r["metrics"]
note = "driver behind" if m.get("driver_behind") else ("saturated" if m.get("saturated") else "")
print(f"{sys.argv[2]:>5}% {sys.argv[3]:>10} {w:8.1f}ms {l50:8.1f}ms {l99:8.1f}ms {l99 / max(w, 1e-9):12.2f} {note}")
PY
done
