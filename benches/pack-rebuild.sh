#!/usr/bin/env bash
# Rebuild of the `shop` pack's read models against the built-in shop's, on SQLite or PostgreSQL (BENCHMARKS
# goal 7c). Each scenario (scenarios/quick.toml and scenarios/pack-shop.toml: the same dataset,
# mix and workers) runs on cqrs-async at 1,000 writes/s and no reads for 20 s and keeps its
# database; then each database is rebuilt, each time on a fresh copy, the two interleaved. The
# last line is the ratio of the pack's best events/s to the built-in's.
#
#   benches/pack-rebuild.sh [ROUNDS] [postgres://USER@HOST:PORT/DB]
#
# NO_BUILD=1 skips `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet
bin=target/release/cqrs-bench

# On PostgreSQL (a URL as the second argument): both scenarios kept in schemas of their own
# (pack_rebuild_b, pack_rebuild_p, dropped at the end), each rebuilt in place (a rebuild
# starts from the seed every time) at its own default batch size, interleaved.
pg="${2:-}"
if [ -n "$pg" ]; then
    trap '"$bin" drop --db "$pg" --schema pack_rebuild_b > /dev/null 2>&1 || true
          "$bin" drop --db "$pg" --schema pack_rebuild_p > /dev/null 2>&1 || true
          rm -rf "$work"' EXIT
    for pair in quick:pack_rebuild_b pack-shop:pack_rebuild_p; do
        "$bin" run "scenarios/${pair%%:*}.toml" --backends cqrs-async --write-rate 1000 \
            --read-rate 0 --duration 21s --warmup 1s --keep-db --db "$pg" \
            --schema "${pair##*:}" --out "$work/out-${pair##*:}" --quiet > "$work/run.log"
    done
    for _ in $(seq "$rounds"); do
        for side in built-in pack; do
            if [ "$side" = pack ]; then
                "$bin" rebuild --db "$pg" --schema pack_rebuild_p_cqrs_async \
                    --pack workloads/shop > "$work/rebuild.log"
            else
                "$bin" rebuild --db "$pg" --schema pack_rebuild_b_cqrs_async > "$work/rebuild.log"
            fi
            sed -nE "s/.*from ([0-9]+) events in [0-9.]+s \(([0-9]+) events\/s\).*/$side \1 \2/p" \
                "$work/rebuild.log"
        done
    done | tee "$work/rates"
    python3 - "$work/rates" <<'PY'
import sys
rates = {}
for line in open(sys.argv[1]):
    name, _, rate = line.split()
    rates.setdefault(name, []).append(int(rate))
pairs = [p / b for b, p in zip(rates["built-in"], rates["pack"])]
print(f"pack rebuild ratio: {max(rates['pack']) / max(rates['built-in']):.2f} (best of each), "
      f"pairwise {min(pairs):.2f}-{max(pairs):.2f}")
PY
    exit 0
fi

for name in quick pack-shop; do
    "$bin" run "scenarios/$name.toml" --backends cqrs-async --write-rate 1000 --read-rate 0 \
        --duration 21s --warmup 1s --keep-db --db "sqlite://$work/$name.db" \
        --out "$work/out-$name" --quiet > "$work/run-$name.log"
done
kept() {
    python3 -c '
import json, sys
print(json.load(open(sys.argv[1]))["runs"][0]["kept_database"].removeprefix("sqlite://"))' \
        "$work/out-$1/results.json"
}
builtin_db=$(kept quick)
pack_db=$(kept pack-shop)

rebuild() { # NAME FILE [ARGS...]: events and events/s of one rebuild of a fresh copy
    local name=$1 file=$2
    shift 2
    rm -f "$work/copy.db" "$work/copy.db-wal" "$work/copy.db-shm"
    sqlite3_copy "$file" "$work/copy.db"
    "$bin" rebuild --db "sqlite://$work/copy.db" "$@" > "$work/rebuild.log"
    python3 - "$name" "$work/rebuild.log" <<'PY'
import re, sys
text = open(sys.argv[2]).read()
m = re.search(r"from ([0-9]+) events in [0-9.]+s \(([0-9]+) events/s\)", text)
if not m:
    sys.exit(f"no rate in the rebuild's output:\n{text}")
print(sys.argv[1], m.group(1), m.group(2))
PY
}
sqlite3_copy() { # a consistent copy, the WAL folded in
    python3 -c '
import sqlite3, sys
src = sqlite3.connect(sys.argv[1]); dst = sqlite3.connect(sys.argv[2])
src.backup(dst); dst.close(); src.close()' "$1" "$2"
}

for _ in $(seq "$rounds"); do
    rebuild built-in "$builtin_db"
    rebuild pack "$pack_db" --pack workloads/shop
done | tee "$work/rates"
python3 - "$work/rates" <<'PY'
import sys
best = {}
for line in open(sys.argv[1]):
    name, events, rate = line.split()
    best[name] = max(best.get(name, 0), int(rate))
print(f"pack rebuild ratio: {best['pack'] / best['built-in']:.2f} (best of each)")
PY
