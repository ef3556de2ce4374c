#!/usr/bin/env bash
# Seeding at the large scale (scenarios/seed-large.toml): rows/s and peak RSS of
# `cqrs-bench seed` on SQLite and, given a URL, on PostgreSQL; there also `pgbench -i` at a
# comparable row count on a temporary database this script creates and drops, and the ratio
# of our rows/s to pgbench's (the issue asks for ≥ 0.5).
#
#   benches/seed-scale.sh [postgres://USER@HOST:PORT/DB]
#
# SCALE=F in the environment multiplies every dataset size by F (e.g. SCALE=0.05 for a quick
# check that the script works; the figures in BENCHMARKS.md are at SCALE=1).
# BACKENDS="A B" picks whose datasets are seeded (default "normalized cqrs-async"): normalized
# loads the write tables alone, like pgbench; cqrs-async also loads the event log (reported as
# events, not rows) and builds the read models, the most work.
set -euo pipefail
cd "$(dirname "$0")/.."

url="${1:-}"
scale="${SCALE:-1}"
backends="${BACKENDS:-normalized cqrs-async}"
work="$(mktemp -d)"
pgdb="cqrs_bench_pgbench_init_$$"
schema=cqrs_bench_seedlarge
bin=target/release/cqrs-bench
cleanup() {
    if [ -n "$url" ]; then
        psql -q -X "$url" -c "DROP DATABASE IF EXISTS $pgdb" > /dev/null 2>&1 || true
        "$bin" drop --db "$url" --schema "$schema" > /dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet

# The scenario, its dataset sizes scaled.
scenario="$work/seed-large.toml"
python3 - "$scale" scenarios/seed-large.toml "$scenario" <<'PY'
import re, sys
scale, src, dst = float(sys.argv[1]), sys.argv[2], sys.argv[3]
out, in_dataset = [], False
for line in open(src):
    if line.startswith("["):
        in_dataset = line.strip() == "[dataset]"
    m = re.match(r"^(categories|products|users|orders|reviews|price_changes) = (\d+)$", line.strip())
    if in_dataset and m:
        line = f"{m[1]} = {max(1, round(int(m[2]) * scale))}\n"
    out.append(line)
open(dst, "w").writelines(out)
PY

# Seeds BACKEND with `seed`'s other arguments; prints "ROWS EVENTS SECONDS ROWS_PER_S PEAK_MB"
# from its report line and /usr/bin/time's peak RSS.
seed() {
    local backend=$1
    shift
    /usr/bin/time -f "peak_kb %M" -o "$work/time" "$bin" seed "$@" --backend "$backend" \
        --scenario "$scenario" > "$work/seed.log"
    python3 - "$work/seed.log" "$work/time" <<'PY'
import re, sys
log, rss = open(sys.argv[1]).read(), open(sys.argv[2]).read()
m = re.search(r": (\d+) rows, (\d+) events in ([0-9.]+)s \(([0-9]+) rows/s\)", log)
if not m:
    sys.exit(f"unexpected seed output: {log!r}")
kb = int(re.search(r"peak_kb (\d+)", rss)[1])
print(m[1], m[2], m[3], m[4], f"{kb / 1024:.0f}")
PY
}

declare -A pg_rate
for backend in $backends; do
    read -r rows events secs rate mb < <(seed "$backend" --db "sqlite://$work/seed.db")
    echo "sqlite     $backend: $rows rows + $events events in $secs s: $rate rows/s, peak RSS $mb MB (scale $scale)"
    rm -f "$work"/seed.db*
    [ -n "$url" ] || continue
    read -r rows events secs rate mb < <(seed "$backend" --db "$url" --schema "$schema")
    "$bin" drop --db "$url" --schema "$schema" > /dev/null
    echo "postgresql $backend: $rows rows + $events events in $secs s: $rate rows/s, peak RSS $mb MB (scale $scale)"
    pg_rate[$backend]=$rate
done

[ -n "$url" ] || exit 0

# pgbench -i: scale 1 is 100,000 pgbench_accounts rows (plus 10 tellers and 1 branch).
pgscale=$(( (rows + 50000) / 100000 ))  # the last backend's write rows (the same for all)
[ "$pgscale" -ge 1 ] || pgscale=1
psql -q -X "$url" -c "CREATE DATABASE $pgdb" > /dev/null
pgurl="${url%/*}/$pgdb"
pgbench -i -q -s "$pgscale" "$pgurl" > "$work/pgbench.log" 2>&1
secs=$(sed -n 's/^done in \([0-9.]*\) s.*/\1/p' "$work/pgbench.log")
[ -n "$secs" ] || { cat "$work/pgbench.log"; exit 1; }
pgrows=$(( pgscale * 100011 ))
python3 - "$pgrows" "$secs" "$pgscale" "${!pg_rate[@]}" -- "${pg_rate[@]}" <<'PY'
import sys
rows, secs, scale = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
rest = sys.argv[4:]
cut = rest.index("--")
names, rates = rest[:cut], [float(r) for r in rest[cut + 1:]]
theirs = rows / secs
print(f"pgbench -i: {rows} rows in {secs} s: {theirs:.0f} rows/s (-s {scale})")
for name, ours in zip(names, rates):
    print(f"ratio {name}: {ours / theirs:.3f}")
PY
