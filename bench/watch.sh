#!/usr/bin/env bash
# The watch loop. Run from the repository root:
#   bash bench/watch.sh          both parts
#   bash bench/watch.sh commit   commit-to-running latency of one tenant change (median of 20), and
#                                the loop's resident memory and idle CPU with 50 tenants
#   bash bench/watch.sh drift    `docker rm -f` of a tenant's container to its site answering again
#                                (`watch --self-heal --interval 10m`: only the engine's events can
#                                trigger the repair), and to the OutOfSync report without --self-heal
#   bash bench/watch.sh hook     `git push` of a tenant change to a file:// remote plus a signed
#                                POST /hooks/git to the new container answering (`watch --remote
#                                --interval 10m`: only the webhook can trigger the fetch)
set -euo pipefail
root=$(pwd)
part=${1:-all}
runs=${BENCH_RUNS:-20}
tenants=${BENCH_TENANTS:-50}
drift_tenants=${BENCH_DRIFT_TENANTS:-5}
idle_seconds=${BENCH_IDLE_SECONDS:-60}
ns="benchw$$"
nsd="benchd$$"
nsh="benchh$$"
work=$(mktemp -d)
watch_pid=""

source "$root/bench/lib.sh"

stop_watch() {
    if [ -n "$watch_pid" ]; then
        kill "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null || true
        watch_pid=""
    fi
}

cleanup() {
    stop_watch
    remove_namespace "$ns"
    remove_namespace "$nsd"
    remove_namespace "$nsh"
    rm -rf "$work"
}
trap cleanup EXIT

# Fresh binaries are not rebuilt (cargo checks); TENANTCTL_BIN=path runs a binary built elsewhere.
if [ -n "${TENANTCTL_BIN:-}" ]; then
    bin=$(realpath "$TENANTCTL_BIN")
else
    cargo build --release --quiet
    bin="$root/target/release/tenantctl"
fi
now_ms() { date +%s%3N; }

# stats MS...: median, p90 and max of the figures given.
stats() {
    printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {
        m = (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)
        p = a[int(0.9 * NR + 0.999)]
        printf "median %d ms, p90 %d ms, max %d ms (n=%d)", m, p, a[NR], NR }'
}

# answers NAME: the container's site answers /health with 200 on its published loopback port.
answers() {
    local port
    port=$(docker port "$1" 8080/tcp 2>/dev/null | awk -F: '/^127\.0\.0\.1:/ {print $2; exit}')
    [ -n "$port" ] && curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/health" 2>/dev/null
}

drift_bench() {
    local dir="$work/drift" t name start latencies=() reports=() count
    mkdir -p "$dir"
    tenants_repo "$root" "$dir" "$drift_tenants"
    cd "$dir"
    "$bin" --namespace "$nsd" apply --auto-approve > "$work/drift-apply.log" 2>&1 ||
        { cat "$work/drift-apply.log"; exit 1; }

    # With --self-heal: rm -f, then the site answers again on its new port.
    "$bin" --namespace "$nsd" watch --self-heal --interval 10m --meter-interval 0s > "$work/heal.log" 2>&1 &
    watch_pid=$!
    until grep -qs ": in sync" "$work/heal.log"; do sleep 0.2; done
    for r in $(seq 1 "$runs"); do
        t=t$((r % drift_tenants)); name="$nsd-$t"
        start=$(now_ms)
        docker rm -f "$name" > /dev/null
        until answers "$name"; do
            [ $(( $(now_ms) - start )) -lt 60000 ] || { echo "run $r: $name not back"; tail -20 "$work/heal.log"; exit 1; }
            sleep 0.02
        done
        latencies+=($(( $(now_ms) - start )))
    done
    echo "docker rm -f to answering HTTP 200 again (watch --self-heal --interval 10m, $drift_tenants tenants): $(stats "${latencies[@]}")"
    stop_watch

    # Without --self-heal: rm -f, then watch says "out of sync"; apply puts it back between runs.
    "$bin" --namespace "$nsd" watch --interval 10m --meter-interval 0s > "$work/report.log" 2>&1 &
    watch_pid=$!
    until grep -qs ": in sync" "$work/report.log"; do sleep 0.2; done
    for r in $(seq 1 "$runs"); do
        t=t$((r % drift_tenants)); name="$nsd-$t"
        count=$(grep -c "out of sync: " "$work/report.log" || true)
        start=$(now_ms)
        docker rm -f "$name" > /dev/null
        while [ "$(grep -c "out of sync: " "$work/report.log" || true)" -le "$count" ]; do
            [ $(( $(now_ms) - start )) -lt 60000 ] || { echo "run $r: no report"; tail -20 "$work/report.log"; exit 1; }
            sleep 0.02
        done
        reports+=($(( $(now_ms) - start )))
        "$bin" --namespace "$nsd" apply --auto-approve > /dev/null 2>&1
        sleep 1
    done
    echo "docker rm -f to the OutOfSync report (watch --interval 10m, no --self-heal): $(stats "${reports[@]}")"
    stop_watch
    cd "$root"
}

hook_bench() {
    local dir="$work/hook" host="$work/hook-host" t name start latencies=() port body sig status
    local secret="bench-secret-$$"
    mkdir -p "$dir" "$host"
    git init -q --bare -b main "$work/origin.git"
    tenants_repo "$root" "$dir" "$drift_tenants" 'env: { REV: "0" }'
    git -C "$dir" push -q "file://$work/origin.git" HEAD:main
    cd "$host"
    TENANTCTL_WEBHOOK_SECRET="$secret" "$bin" --namespace "$nsh" watch --remote "file://$work/origin.git" \
        --interval 10m --meter-interval 0s --metrics-addr 127.0.0.1:0 > "$work/hook.log" 2>&1 &
    watch_pid=$!
    until grep -qs "changes applied" "$work/hook.log"; do sleep 0.2; done
    port=$(grep -o 'http://127.0.0.1:[0-9]*/metrics' "$work/hook.log" | head -1 | sed 's|.*:\([0-9]*\)/metrics|\1|')
    for r in $(seq 1 "$runs"); do
        t=t$((r % drift_tenants)); name="$nsh-$t"
        # Quiet first: no health check pending (its event would start a pass that fetches too).
        while docker ps --filter "label=tenantctl.namespace=$nsh" --format '{{.Status}}' | grep -q starting; do sleep 0.2; done
        sleep 1
        sed -i "s/REV: \"[0-9]*\"/REV: \"$r\"/" "$dir/tenants/$t.yaml"
        git -C "$dir" -c user.name=bench -c user.email=bench@invalid commit -qam "$t rev $r"
        body="{\"ref\":\"refs/heads/main\",\"after\":\"$(git -C "$dir" rev-parse HEAD)\"}"
        sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
        start=$(now_ms)
        git -C "$dir" push -q "file://$work/origin.git" HEAD:main
        status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
            -H 'X-GitHub-Event: push' -H "X-Hub-Signature-256: sha256=$sig" -d "$body" "http://127.0.0.1:$port/hooks/git")
        [ "$status" = 202 ] || { echo "run $r: webhook answered $status"; tail -20 "$work/hook.log"; exit 1; }
        while true; do
            env=$(docker inspect --type container --format '{{json .Config.Env}}' "$name" 2>/dev/null || true)
            if [[ "$env" == *"REV=$r\""* ]] && answers "$name"; then break; fi
            [ $(( $(now_ms) - start )) -lt 60000 ] || { echo "run $r timed out"; tail -20 "$work/hook.log"; exit 1; }
            sleep 0.02
        done
        latencies+=($(( $(now_ms) - start )))
    done
    echo "git push + signed webhook to the new container answering (watch --remote --interval 10m, $drift_tenants tenants): $(stats "${latencies[@]}")"
    stop_watch
    cd "$root"
}

[ "$part" = drift ] || [ "$part" = all ] || [ "$part" = commit ] || [ "$part" = hook ] || { echo "usage: bash bench/watch.sh [commit|drift|hook]"; exit 2; }
if [ "$part" = hook ] || [ "$part" = all ]; then
    hook_bench
fi
if [ "$part" = drift ] || [ "$part" = all ]; then
    drift_bench
fi
[ "$part" = commit ] || [ "$part" = all ] || exit 0

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
