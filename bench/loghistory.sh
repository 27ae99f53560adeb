#!/usr/bin/env bash
# The log history's cost: lines per second `tenantctl logs sync` copies from a container into
# the database, and how much the database grows per million lines, on SQLite and PostgreSQL.
#
#   bash bench/loghistory.sh                       # from the repository root
#   BENCH_ROUNDS=10 BENCH_LINES=100000 bash bench/loghistory.sh
#
# One tenant on a theme image with a shell (the tenantctl site, dash and wget, built here) writes
# BENCH_LINES lines of about 90 bytes to its stdout per round (a request log line), and a sync
# copies them; BENCH_ROUNDS rounds (default 10 × 100,000 = one million lines). Rounds stay under
# the engine's json-file limit (3 × 10 MB), as `watch` syncing every 30 s would. The time is the
# whole `logs sync` process (engine read, parse, batched inserts), summed over the rounds; a last
# sync with nothing new shows the cost of reading lines already stored. Growth: SQLite, the
# file (WAL checkpointed) before and after; PostgreSQL, pg_database_size before and after.
#
# PostgreSQL: TENANTCTL_TEST_POSTGRES_URL (default postgres://tenantctl:tenantctl@127.0.0.1:5432/postgres,
# a role that may create databases). Everything made (namespaces, image, database, files) is
# removed on exit.
set -euo pipefail
root=$(pwd)
rounds=${BENCH_ROUNDS:-10}
lines=${BENCH_LINES:-100000}
admin=${TENANTCTL_TEST_POSTGRES_URL:-postgres://tenantctl:tenantctl@127.0.0.1:5432/postgres}
db="tenantctl_bench_logs_$$"
pg_url="${admin%/*}/$db"
image="tenantctl-bench-shellsite:$$"
work=$(mktemp -d)
namespaces=()

source "$root/bench/lib.sh"

cleanup() {
    for ns in "${namespaces[@]}"; do remove_namespace "$ns"; done
    psql "$admin" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    docker image rm -f "$image" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --quiet
bin="$root/target/debug/tenantctl"

# The theme image: FROM scratch with the tenantctl site, dash as /bin/sh and wget, and the
# shared objects they need.
ctx="$work/image"
mkdir -p "$ctx"
copy_with_libs() {
    local src=$1 dest=$2
    mkdir -p "$ctx$(dirname "$dest")"
    cp -L "$src" "$ctx$dest"
    for lib in $(ldd "$src" | grep -o '/[^ ]*'); do
        mkdir -p "$ctx$(dirname "$lib")"
        cp -L "$lib" "$ctx$lib"
    done
}
copy_with_libs "$bin" /tenantctl
copy_with_libs "$(command -v dash)" /bin/sh
copy_with_libs "$(command -v wget)" /usr/bin/wget
printf 'FROM scratch\nCOPY . /\nENTRYPOINT ["/tenantctl", "site"]\n' > "$ctx/Dockerfile"
docker build -q -t "$image" "$ctx" >/dev/null

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    pg_ctlcluster 15 main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
psql "$admin" -qAtc "CREATE DATABASE $db" >/dev/null

now_ms() { date +%s%3N; }

# emit CONTAINER ROUND: BENCH_LINES request-log lines on the container's stdout.
emit() {
    docker exec "$1" sh -c "i=0; while [ \$i -lt $lines ]; do printf '%s INFO request id=$2-%07d method=GET path=/api/items/%d status=200 duration_ms=%d\n' 2026-12-07T02:00:00Z \$i \$i \$((i % 97)); i=\$((i+1)); done > /proc/1/fd/1"
}

# size BACKEND REPO: the database's size in bytes.
size() {
    if [ "$1" = sqlite ]; then
        python3 - "$2/.tenantctl/state.db" <<'EOF'
import sqlite3, sys, os
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.close()
print(os.path.getsize(sys.argv[1]))
EOF
    else
        psql "$admin" -qAtc "SELECT pg_database_size('$db')"
    fi
}

run() {
    local backend=$1 ns="benchl$$${1:0:1}" repo="$work/repo-$1"
    namespaces+=("$ns")
    mkdir -p "$repo/tenants"
    cp -r "$root/plans" "$root/themes" "$repo/"
    printf 'kind: Theme\nname: shelly\nspec:\n  displayName: Shelly\n  version: 1.0.0\n  image: %s\n  health: { path: /health, intervalSeconds: 30 }\n' "$image" > "$repo/themes/shelly.yaml"
    printf 'kind: Tenant\nname: shop\nspec:\n  displayName: Shop\n  owner: ops@shop.example\n  plan: starter\n  theme: shelly\n' > "$repo/tenants/shop.yaml"
    commit_all "$repo" init
    local args=(--repo "$repo" --namespace "$ns")
    [ "$backend" = postgres ] && args+=(--database-url "$pg_url")
    TENANTCTL_SUBNET_POOL=10.232.0.0/24 "$bin" "${args[@]}" apply --auto-approve >/dev/null
    "$bin" "${args[@]}" logs sync >/dev/null # the site's own start lines
    local before total_ms=0 stored=0 after start end out
    before=$(size "$backend" "$repo")
    for r in $(seq 1 "$rounds"); do
        emit "$ns-shop" "$r"
        start=$(now_ms)
        out=$("$bin" "${args[@]}" logs sync -o json)
        end=$(now_ms)
        total_ms=$((total_ms + end - start))
        stored=$((stored + $(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored"])')))
    done
    after=$(size "$backend" "$repo")
    start=$(now_ms)
    out=$("$bin" "${args[@]}" logs sync -o json)
    end=$(now_ms)
    local again_ms=$((end - start)) again_read
    again_read=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["read"])')
    python3 - "$backend" "$stored" "$total_ms" "$before" "$after" "$again_ms" "$again_read" <<'EOF'
import sys
backend, stored, ms, before, after, again_ms, again_read = sys.argv[1], *map(int, sys.argv[2:])
per_m = (after - before) / stored * 1e6 / 2**20
print(f"{backend:<9} {stored:>9} lines stored in {ms/1000:6.1f}s: {stored/(ms/1000):8.0f} lines/s; "
      f"database +{(after-before)/2**20:6.1f} MiB = {per_m:6.1f} MiB per million lines; "
      f"a sync with nothing new ({again_read} lines read again): {again_ms/1000:.1f}s")
EOF
}

echo "log history: $rounds rounds of $lines lines, debug build"
run sqlite
run postgres
