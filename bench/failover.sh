#!/usr/bin/env bash
# Leader failover of `tenantctl watch`: two watch processes on one PostgreSQL database, kill -9
# the leader, commit a change to one tenant at once, and time (from the kill) until the standby
# says it leads and until the change is running and answering /health. Median of BENCH_RUNS (5).
#
#   bash bench/failover.sh                         # from the repository root
#   BENCH_RUNS=5 BENCH_LEASE_TTL=10s bash bench/failover.sh
#
# PostgreSQL: TENANTCTL_TEST_POSTGRES_URL (default postgres://tenantctl:tenantctl@127.0.0.1:5432/postgres,
# a role that may create databases); a local cluster is started if it does not answer. The script
# creates its own database, namespace and repository and removes them (and the containers,
# networks and volumes labelled with its namespace, and its processes) on exit.
#
# What to expect: the standby takes the lease once it has lapsed by the database's clock, i.e.
# `ttl - (time since the leader's last renewal)` after the kill, plus up to one retry interval
# (min(ttl/5, 1s)). The leader renews every ttl/3, so with the default 10 s lease the takeover
# lands between about 6.7 s and 11 s after the kill. The kill comes at a random point of the
# renewal cycle; each run prints how long before the kill the lease was last renewed, which
# explains where in that window it fell.
set -euo pipefail
root=$(pwd)
runs=${BENCH_RUNS:-5}
ttl=${BENCH_LEASE_TTL:-10s}
ttl_s=${ttl%s}
[[ "$ttl_s" =~ ^[0-9]+$ ]] || { echo "BENCH_LEASE_TTL: whole seconds, e.g. 10s" >&2; exit 1; }
admin=${TENANTCTL_TEST_POSTGRES_URL:-postgres://tenantctl:tenantctl@127.0.0.1:5432/postgres}
ns="benchf$$"
db="tenantctl_bench_failover_$$"
url="${admin%/*}/$db"
work=$(mktemp -d)
pids=()

source "$root/bench/lib.sh"

cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    remove_namespace "$ns"
    psql "$admin" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    pg_ctlcluster 15 main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
psql "$admin" -qAtc "CREATE DATABASE $db" >/dev/null

cargo build --release --quiet
bin="$root/target/release/tenantctl"

# The example repository, with a knob on acme that each run turns.
cp -r "$root/plans" "$root/themes" "$root/tenants" "$work/"
sed -i 's/env: { LOG_LEVEL: info }/env: { LOG_LEVEL: info, BENCH: "0" }/' "$work/tenants/us/acme.yaml"
grep -q 'BENCH: "0"' "$work/tenants/us/acme.yaml"
commit_all "$work" init
cd "$work"

now_ms() { date +%s%3N; }
started=""
start_watch() { # log file; sets $started to the pid
    "$bin" --namespace "$ns" --database-url "$url" watch --lease-ttl "$ttl" --interval 1m \
        --meter-interval 0s > "$1" 2>&1 &
    started=$!
    pids+=("$started")
}
wait_for() { # seconds, description, command...
    local limit=$(( $(now_ms) + $1 * 1000 )) what=$2
    shift 2
    until "$@"; do
        [ "$(now_ms)" -lt "$limit" ] || { echo "timed out: $what"; tail -n 20 "$work"/*.log; exit 1; }
        sleep 0.02
    done
}
serves() { # container, value of BENCH: running the new env and answering /health
    local env port
    env=$(docker inspect --type container --format '{{json .Config.Env}}' "$1" 2>/dev/null || true)
    [[ "$env" == *"BENCH=$2\""* ]] || return 1
    port=$(docker inspect --type container --format '{{(index (index .NetworkSettings.Ports "8080/tcp") 0).HostPort}}' "$1" 2>/dev/null || true)
    [ -n "$port" ] && curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null
}

leads=(); applies=(); ages=()
for r in $(seq 1 "$runs"); do
    start_watch "$work/a$r.log"
    a=$started
    sleep 0.2
    start_watch "$work/b$r.log"
    b=$started
    # One leads and has converged (the first run applies everything); the other stands by.
    wait_for 300 "a leader in sync (run $r)" bash -c \
        "grep -hqE 'changes applied|in sync' '$work/a$r.log' '$work/b$r.log'"
    if grep -q "leading (term" "$work/a$r.log"; then
        leader=$a; standby=$b; slog="$work/b$r.log"
    else
        leader=$b; standby=$a; slog="$work/a$r.log"
    fi
    wait_for 30 "the standby standing by (run $r)" grep -q "standing by: leader is" "$slog"
    # Kill at a random point of the renewal cycle (every ttl/3), not always at the same one.
    sleep "$(awk -v t="$ttl_s" -v s="$RANDOM" 'BEGIN { srand(s); printf "%.3f", 1 + rand() * t / 3 }')"
    age=$(psql "$url" -qAtc "SELECT (extract(epoch from now()) * 1000)::bigint - renewed_at_ms FROM leader")
    kill -9 "$leader"
    killed=$(now_ms)
    { wait "$leader"; } 2>/dev/null || true
    sed -i "s/BENCH: \"[0-9]*\"/BENCH: \"$r\"/" tenants/us/acme.yaml
    git -c user.name=bench -c user.email=bench@invalid commit -qam "bench $r"
    wait_for 60 "the takeover (run $r)" grep -q "took over from" "$slog"
    led=$(( $(now_ms) - killed ))
    wait_for 120 "the commit applied (run $r)" serves "$ns-acme" "$r"
    applied=$(( $(now_ms) - killed ))
    echo "run $r: lease last renewed ${age} ms before the kill; new leader after ${led} ms; commit running and healthy after ${applied} ms"
    leads+=("$led"); applies+=("$applied"); ages+=("$age")
    kill "$standby"
    { wait "$standby"; } 2>/dev/null || true
done

stats() { # label, values...
    local label=$1
    shift
    printf '%s\n' "$@" | sort -n | awk -v l="$label" '{a[NR]=$1} END {
        m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        printf "%s: median %d ms, min %d ms, max %d ms (%d runs)\n", l, m, a[1], a[NR], NR }'
}
echo "lease ttl $ttl; kill -9 of the leader, commit made right after the kill:"
stats "  kill -> standby leads" "${leads[@]}"
stats "  kill -> commit running and healthy" "${applies[@]}"
stats "  (lease age at the kill)" "${ages[@]}"
