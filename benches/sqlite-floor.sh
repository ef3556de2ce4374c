#!/usr/bin/env bash
# The harness against the client library's own limit on SQLite: closed-loop `user_orders` on
# cqrs-sync's read models with 1 worker through cqrs-bench (scenarios/read-floor.toml), then the
# same statement in a bare sqlx loop on one connection (benches/sqlite_loop.rs) and, for
# context, in Python's sqlite3 module, both on the file the run seeded. The last line is the
# ratio of cqrs-bench's ops/s to the bare loop's.
#
#   benches/sqlite-floor.sh [DB_FILE] [SECONDS]
#
# DB_FILE: where the run keeps its seeded database (default: a temporary folder, removed after).
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
db="${1:-$work/floor.db}"
seconds="${2:-10}"
scenario=scenarios/read-floor.toml

cargo build --release --quiet
cargo bench --no-run --quiet --bench sqlite_loop 2> /dev/null
loop_bin=$(ls -t target/release/deps/sqlite_loop-* | grep -v '\.d$' | head -n1)
bin=target/release/cqrs-bench

"$bin" run "$scenario" --db "sqlite://$db" --duration "$((seconds + 2))s" --read-workers 1 \
    --keep-db --quiet --out "$work/run" > "$work/run.log"
read -r ours file < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["runs"][0]
print(r["rates"]["read_achieved"], r["kept_database"].removeprefix("sqlite://"))' "$work/run/results.json")

bare=$("$loop_bin" "$file" "$seconds" | sed -n 's/^bare sqlx loop: \([0-9.]*\) ops\/s.*/\1/p')

python=$(python3 - "$file" "$seconds" <<'PY'
import random, sqlite3, sys, time
con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
users = con.execute("SELECT MAX(id) FROM users").fetchone()[0]
sql = ("SELECT order_id, placed_at, status, item_count, total_cents FROM order_summary "
       "WHERE user_id = ? ORDER BY placed_at DESC, order_id DESC LIMIT ?")
end = time.perf_counter() + float(sys.argv[2])
n, start = 0, time.perf_counter()
while time.perf_counter() < end:
    con.execute(sql, (random.randint(1, users), 20)).fetchall()
    n += 1
print(f"{n / (time.perf_counter() - start):.0f}")
PY
)
[ -n "${1:-}" ] || rm -f "$file" "$file-wal" "$file-shm"

echo "cqrs-bench user_orders: ${ours} ops/s (closed loop, 1 worker, cqrs-sync read models)"
echo "bare sqlx loop:         ${bare} ops/s (one connection, same statement, same file)"
echo "Python sqlite3:         ${python} ops/s (context: no worker thread between caller and SQLite)"
python3 -c 'import sys; print(f"sqlite ratio: {float(sys.argv[1]) / float(sys.argv[2]):.3f}")' "$ours" "$bare"
