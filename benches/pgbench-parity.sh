#!/usr/bin/env bash
# Driver overhead against the yardstick, on PostgreSQL:
# - writes: closed-loop `place_order` on `normalized` through cqrs-bench, and the same SQL
#   through pgbench (-M prepared, same number of clients, same seeded data); prints `ratio: X`
#   (transactions per second, ours over pgbench's);
# - reads: closed-loop `user_orders` on cqrs-sync's read models (scenarios/read-floor.toml) with
#   1 and 4 workers, and the same statement through pgbench with 1 and 4 clients on the run's
#   kept schema; prints `read ratio: X (N workers)` for each.
#
# - packs: closed-loop reads of the ledger pack's `balance` (scenarios/pack-parity.toml, one
#   statement) with 1 and 4 workers, and the same statement through pgbench on the run's kept
#   schema; prints `pack ratio: X (N workers)` for each.
#
#   benches/pgbench-parity.sh postgres://postgres@127.0.0.1:5432/test [SECONDS] [writes|reads|packs|all]
#
# THREADS=N in the environment runs cqrs-bench with `--threads N` (default: its own default).
# cqrs-bench's place_order is: BEGIN; check the user; per line (1–3, 2 on average) a
# conditional UPDATE … RETURNING of the product's stock; INSERT the order; one multi-row
# INSERT of its lines; COMMIT. The pgbench script below does exactly that with two lines.
set -euo pipefail
cd "$(dirname "$0")/.."

url="${1:?usage: benches/pgbench-parity.sh DB_URL [SECONDS] [writes|reads|all]}"
seconds="${2:-20}"
mode="${3:-all}"
case "$mode" in writes|reads|packs|all) ;; *) echo "mode: writes, reads, packs or all, got $mode" >&2; exit 2;; esac
clients=8            # = writes.workers in scenarios/pgbench-parity.toml
schema=cqrs_bench_pgbench_parity
scenario=scenarios/pgbench-parity.toml
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# NO_BUILD=1: use the binary already built (a build changes nothing measured, but takes minutes).
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet
bin=target/release/cqrs-bench
threads=(${THREADS:+--threads "$THREADS"})

# A checkpoint before each side, so neither pays for the other's dirty pages.
checkpoint() { psql -q -X "$url" -c CHECKPOINT > /dev/null 2>&1 || true; }

writes() {
# pgbench's copy of the dataset, seeded the same way, first: its dirty pages are flushed by the
# checkpoint below rather than during either measurement.
"$bin" seed --db "$url" --schema "${schema}_pgbench" --backend normalized --scenario "$scenario" > /dev/null

# 1. cqrs-bench, closed loop (it seeds its own fresh copy, schema <prefix>_normalized).
checkpoint
"$bin" run "$scenario" --db "$url" --schema "$schema" --duration "$((seconds + 2))s" "${threads[@]}" \
    --quiet --out "$work/run" > "$work/run.log"
ours=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["runs"][0]["rates"]["write_achieved"])' "$work/run/results.json")

# 2. pgbench on its copy.
checkpoint
cat > "$work/place_order.sql" <<'SQL'
\set uid random(1, 10000)
\set p1 random(1, 50000)
\set p2 random(50001, 100000)
\set q1 random(1, 3)
\set q2 random(1, 3)
\set oid random(1000000000, 9000000000)
BEGIN;
SELECT 1 FROM users WHERE id = :uid;
UPDATE products SET stock = stock - :q1, version = version + 1 WHERE id = :p1 AND stock - :q1 >= 0 RETURNING price_cents, stock, version;
UPDATE products SET stock = stock - :q2, version = version + 1 WHERE id = :p2 AND stock - :q2 >= 0 RETURNING price_cents, stock, version;
INSERT INTO orders (id, user_id, status, placed_at, updated_at, version) VALUES (:oid, :uid, 'placed', 1767225600000000, 1767225600000000, 1) ON CONFLICT (id) DO NOTHING;
INSERT INTO order_items (order_id, product_id, qty, unit_cents) VALUES (:oid, :p1, :q1, 1000), (:oid, :p2, :q2, 1000) ON CONFLICT DO NOTHING;
COMMIT;
SQL
# pgbench takes libpq connection parameters; the search path selects the seeded schema.
PGOPTIONS="-c search_path=${schema}_pgbench" pgbench -n -M prepared -c "$clients" -j "$clients" \
    -T "$seconds" -f "$work/place_order.sql" "$url" > "$work/pgbench.log" 2>&1
theirs=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$work/pgbench.log")
[ -n "$theirs" ] || { cat "$work/pgbench.log"; exit 1; }

# Clean up the pgbench copy (the run dropped its own).
"$bin" drop --db "$url" --schema "${schema}_pgbench" > /dev/null

echo "cqrs-bench place_order: ${ours} tx/s (closed loop, ${clients} workers)"
echo "pgbench same SQL:       ${theirs} tx/s (-M prepared, ${clients} clients)"
python3 -c 'import sys; print(f"ratio: {float(sys.argv[1]) / float(sys.argv[2]):.3f}")' "$ours" "$theirs"
}

# Reads: the tool's run keeps its schema; pgbench reads the same table in it.
reads() {
    local workers=$1 read_schema=cqrs_bench_read_floor
    checkpoint
    "$bin" run scenarios/read-floor.toml --db "$url" --schema "$read_schema" \
        --duration "$((seconds + 2))s" --read-workers "$workers" "${threads[@]}" --keep-db --quiet \
        --out "$work/reads$workers" > /dev/null
    local ours theirs
    ours=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["runs"][0]["rates"]["read_achieved"])' "$work/reads$workers/results.json")
    cat > "$work/user_orders.sql" <<'SQL'
\set uid random(1, 1000)
SELECT order_id, placed_at, status, item_count, total_cents FROM order_summary WHERE user_id = :uid ORDER BY placed_at DESC, order_id DESC LIMIT 20;
SQL
    checkpoint
    PGOPTIONS="-c search_path=${read_schema}_cqrs_sync" pgbench -n -M prepared -c "$workers" \
        -j "$workers" -T "$seconds" -f "$work/user_orders.sql" "$url" > "$work/pgbench-reads.log" 2>&1
    theirs=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$work/pgbench-reads.log")
    [ -n "$theirs" ] || { cat "$work/pgbench-reads.log"; exit 1; }
    "$bin" drop --db "$url" --schema "${read_schema}_cqrs_sync" > /dev/null
    echo "cqrs-bench user_orders: ${ours} ops/s (closed loop, ${workers} workers, read models)"
    echo "pgbench same SQL:       ${theirs} tps (-M prepared, ${workers} clients)"
    python3 -c 'import sys; print(f"read ratio: {float(sys.argv[1]) / float(sys.argv[2]):.3f} ({sys.argv[3]} workers)")' "$ours" "$theirs" "$workers"
}

# A pack's one-statement query: the pack path (op stream, parameters drawn per op, the pack's
# statement compiled once and prepared once per connection) against pgbench.
packs() {
    local workers=$1 pack_schema=cqrs_bench_pack_parity
    checkpoint
    "$bin" run scenarios/pack-parity.toml --db "$url" --schema "$pack_schema" \
        --duration "$((seconds + 2))s" --read-workers "$workers" "${threads[@]}" --keep-db --quiet \
        --out "$work/pack$workers" > /dev/null
    local ours theirs
    ours=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["runs"][0]["rates"]["read_achieved"])' "$work/pack$workers/results.json")
    cat > "$work/balance.sql" <<'SQL'
\set account random_zipfian(1, 1000, 1.1)
SELECT balance FROM accounts WHERE id = :account;
SQL
    checkpoint
    PGOPTIONS="-c search_path=${pack_schema}_normalized" pgbench -n -M prepared -c "$workers" \
        -j "$workers" -T "$seconds" -f "$work/balance.sql" "$url" > "$work/pgbench-pack.log" 2>&1
    theirs=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$work/pgbench-pack.log")
    [ -n "$theirs" ] || { cat "$work/pgbench-pack.log"; exit 1; }
    "$bin" drop --db "$url" --schema "${pack_schema}_normalized" > /dev/null
    echo "cqrs-bench pack balance: ${ours} ops/s (closed loop, ${workers} workers)"
    echo "pgbench same SQL:        ${theirs} tps (-M prepared, ${workers} clients)"
    python3 -c 'import sys; print(f"pack ratio: {float(sys.argv[1]) / float(sys.argv[2]):.3f} ({sys.argv[3]} workers)")' "$ours" "$theirs" "$workers"
}

case "$mode" in
    writes) writes ;;
    reads) reads 1; reads 4 ;;
    packs) packs 1; packs 4 ;;
    all) writes; reads 1; reads 4; packs 1; packs 4 ;;
esac
