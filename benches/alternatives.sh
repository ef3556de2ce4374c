#!/usr/bin/env bash
# The alternatives to CQRS (BENCHMARKS.md section 9), on PostgreSQL:
#  1. each materialized view's REFRESH … CONCURRENTLY time at the small dataset
#     (scenarios/matview-dashboard.toml) and the large one (scenarios/seed-large.toml, sizes
#     times SCALE), timed by psql, outside the tool (median of 3);
#  2. matview staleness (lag p50/p99, read-your-writes) against the refresh interval: 0.5 s,
#     1 s, 5 s, from `cqrs-bench run` on the matview-dashboard scenario;
#  3. replication lag at 200 and 1,000 writes/s, on a private primary and hot standby this
#     script starts (initdb, pg_basebackup -R, free ports, fsync on) and removes, next to
#     cqrs-async's projection lag in the same scenario.
#
#   benches/alternatives.sh postgres://USER@HOST:PORT/DB
#
# SCALE=F shrinks the large dataset (default 1: two million orders). PARTS="1 2 3" picks parts.
set -euo pipefail
cd "$(dirname "$0")/.."

url="${1:?give a PostgreSQL URL}"
scale="${SCALE:-1}"
parts="${PARTS:-1 2 3}"
work="$(mktemp -d /tmp/cqrs-bench-alt.XXXX)"
chmod 755 "$work" # the private servers run as postgres and live inside it
bin=target/release/cqrs-bench
schema=cqrs_bench_altbench
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort | tail -n1)"
cluster=""
cleanup() {
    "$bin" drop --db "$url" --schema "$schema" > /dev/null 2>&1 || true
    if [ -n "$cluster" ]; then
        for d in standby primary; do
            runuser -u postgres -- "$pgbin/pg_ctl" -D "$cluster/$d" -m immediate stop > /dev/null 2>&1 || true
        done
    fi
    rm -rf "$work"
}
trap cleanup EXIT
cargo build --release --quiet

# A scenario file with its [dataset] scaled and other keys replaced: scenario SRC DST SCALE KEY=VALUE…
scenario() {
    python3 - "$@" <<'PY'
import re, sys
src, dst, scale, *sets = sys.argv[1:]
scale = float(scale)
text = open(src).read()
def scaled(m):
    return f"{m.group(1)} = {max(1, int(int(m.group(2)) * scale))}"
head, sep, rest = text.partition("[dataset]")
body, nxt, tail = rest.partition("\n[")
body = re.sub(r"^(categories|products|users|orders|reviews|price_changes) = (\d+)", scaled, body, flags=re.M)
text = head + sep + body + nxt + tail
for s in sets:
    key, value = s.split("=", 1)
    if re.search(rf"^{re.escape(key)} = .*$", text, flags=re.M):
        text = re.sub(rf"^{re.escape(key)} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
    else:
        text = f"{key} = {value}\n" + text
open(dst, "w").write(text)
PY
}

# Median of three psql-timed refreshes of each view.
refresh_times() {
    local label="$1"
    for view in product_catalog catalog_price_changes order_summary daily_sales product_sales; do
        local times=()
        for _ in 1 2 3; do
            t=$(psql -X -q "$url" -c "SET search_path TO ${schema}_matview" -c '\timing on' \
                -c "REFRESH MATERIALIZED VIEW CONCURRENTLY $view" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n1)
            times+=("$t")
        done
        median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
        printf '%-6s %-22s %10.1f ms\n' "$label" "$view" "$median"
    done
}

if [[ " $parts " == *" 1 "* ]]; then
    echo "== 1. refresh duration per view (psql \\timing, median of 3)"
    scenario scenarios/matview-dashboard.toml "$work/small.toml" 1
    scenario scenarios/seed-large.toml "$work/large.toml" "$scale"
    for size in small large; do
        "$bin" seed --db "$url" --schema "${schema}_matview" --backend matview --scenario "$work/$size.toml" > /dev/null
        psql -X -q -t "$url" -c "SELECT '$size orders: ' || COUNT(*) FROM ${schema}_matview.orders"
        refresh_times "$size"
        "$bin" drop --db "$url" --schema "${schema}_matview" > /dev/null
    done
fi

lag_of() { # results.json backend -> "lag p50 / p99, ryw miss"
    python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for run in r["runs"]:
    if run["backend"] == sys.argv[2]:
        m = run["metrics"]
        w = m["ops"]["write"]
        print(f'{sys.argv[2]:<11} writes {run["rates"]["write_achieved"]:7.0f}/s  write p99 {w["latency"]["p99_us"]/1000:8.1f} ms  '
              f'lag p50 {m["lag"]["p50_us"]/1000:8.1f} ms  p99 {m["lag"]["p99_us"]/1000:8.1f} ms  '
              f'ryw miss {m["ryw"]["miss_share"]*100:5.1f}%  saturated {m["saturated"]}')
PY
}

if [[ " $parts " == *" 2 "* ]]; then
    echo "== 2. matview staleness against the refresh interval (matview-dashboard, 20 s)"
    for interval in 500ms 1s 5s; do
        scenario scenarios/matview-dashboard.toml "$work/mv-$interval.toml" 1 \
            'backends=["matview"]' "refresh_interval=\"$interval\"" 'product_catalog="'"$interval"'"'
        "$bin" run "$work/mv-$interval.toml" --db "$url" --schema "$schema" --quiet --out "$work/mv-$interval" > /dev/null
        printf 'every %-6s ' "$interval"
        lag_of "$work/mv-$interval/results.json" matview
    done
fi

if [[ " $parts " == *" 3 "* ]]; then
    echo "== 3. replication lag (private primary + hot standby, fsync on) against cqrs-async's projection lag"
    cluster="$work/cluster"
    mkdir -p "$cluster" && chown postgres: "$cluster"
    p1=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    p2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    runuser -u postgres -- "$pgbin/initdb" -D "$cluster/primary" -A trust -U postgres > /dev/null
    printf "port = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n" "$p1" "$cluster" >> "$cluster/primary/postgresql.auto.conf"
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$cluster/primary" -l "$cluster/primary.log" -w start > /dev/null
    (cd /tmp && runuser -u postgres -- "$pgbin/pg_basebackup" -D "$cluster/standby" -R -h 127.0.0.1 -p "$p1" -U postgres)
    printf "port = %s\n" "$p2" >> "$cluster/standby/postgresql.auto.conf"
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$cluster/standby" -l "$cluster/standby.log" -w start > /dev/null
    primary="postgres://postgres@127.0.0.1:$p1/postgres"
    standby="postgres://postgres@127.0.0.1:$p2/postgres"
    for rate in 200 1000; do
        "$bin" run scenarios/read-replica.toml --db "$primary" --replica-db "$standby" \
            --backends replica,cqrs-async --write-rate "$rate" --quiet --out "$work/rep-$rate" > /dev/null || true
        for b in replica cqrs-async; do
            printf '%5s/s ' "$rate"
            lag_of "$work/rep-$rate/results.json" "$b"
        done
    done
fi
