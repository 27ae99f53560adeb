#!/usr/bin/env bash
# The watch loop: commit-to-running latency of one tenant change (median of 20), and the loop's
# resident memory and idle CPU with 50 tenants. Run from the repository root: bash bench/watch.sh
set -euo pipefail
root=$(pwd)
runs=${BENCH_RUNS:-20}
tenants=${BENCH_TENANTS:-50}
idle_seconds=${BENCH_IDLE_SECONDS:-60}
ns="benchw$$"
work=$(mktemp -d)
watch_pid=""

source "$root/bench/lib.sh"

cleanup() {
    [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null || true
    remove_namespace "$ns"
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet
bin="$root/target/release/tenantctl"

# A repository of $tenants tenants over the example plans and themes.
tenants_repo "$root" "$work" "$tenants" 'env: { REV: "0" }'

cd "$work"
"$bin" --namespace "$ns" watch --interval 1m --self-heal --metrics-addr 127.0.0.1:0 > "$work/watch.log" 2>&1 &
watch_pid=$!
deadline=$((SECONDS + 600))
until grep -q "changes applied" "$work/watch.log"; do
    [ $SECONDS -lt $deadline ] || { echo "watch did not converge"; cat "$work/watch.log"; exit 1; }
    sleep 0.5
done
echo "converged: $tenants tenants"

now_ms() { date +%s%3N; }
latencies=()
for r in $(seq 1 "$runs"); do
    t=$((r % tenants))
    sed -i "s/REV: \"[0-9]*\"/REV: \"$r\"/" "tenants/t$t.yaml"
    git -c user.name=bench -c user.email=bench@invalid commit -qam "t$t rev $r"
    start=$(now_ms)
    # Running, with the new env, and its site answering /health through the published port.
    while true; do
        env=$(docker inspect --type container --format '{{json .Config.Env}}' "$ns-t$t" 2>/dev/null || true)
        if [[ "$env" == *"REV=$r\""* ]]; then
            port=$(docker inspect --type container --format '{{(index (index .NetworkSettings.Ports "8080/tcp") 0).HostPort}}' "$ns-t$t" 2>/dev/null || true)
            if [ -n "$port" ] && curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; then break; fi
        fi
        [ $(( $(now_ms) - start )) -lt 60000 ] || { echo "run $r timed out"; tail -20 "$work/watch.log"; exit 1; }
        sleep 0.02
    done
    latencies+=($(( $(now_ms) - start )))
done
sorted=$(printf '%s\n' "${latencies[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
echo "commit-to-running (healthy) latency over $runs commits: median ${median} ms, min $(echo "$sorted" | head -1) ms, max $(echo "$sorted" | tail -1) ms"

# Idle: no commits, the loop only waits (resync every minute).
sleep 5
ticks=$(getconf CLK_TCK)
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$watch_pid/stat")
sleep "$idle_seconds"
read -r u2 s2 < <(awk '{print $14, $15}' "/proc/$watch_pid/stat")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$watch_pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$watch_pid/status")
cpu=$(awk -v d=$(( (u2 + s2) - (u1 + s1) )) -v t="$ticks" -v s="$idle_seconds" 'BEGIN {printf "%.2f", 100 * d / t / s}')
echo "idle with $tenants tenants over ${idle_seconds}s (one resync included): CPU ${cpu}% of one core, RSS $((rss / 1024)) MiB (peak $((hwm / 1024)) MiB)"
