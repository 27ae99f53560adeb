#!/usr/bin/env bash
# The dashboard at idle: CPU (of one core) and resident memory of `tenantctl tui` showing 50 live
# tenants, side by side in one run with the peers that show live container usage in a terminal:
# oxker (a ratatui Docker dashboard, `cargo install oxker`) and `docker stats`. Each runs in a real
# terminal (tmux, 160x50) for BENCH_IDLE_SECONDS after a warm-up; dockerd's CPU in the same window
# is shown too (what the tool costs the engine). Run from the repository root: bash bench/tui.sh
set -euo pipefail
root=$(pwd)
tenants=${BENCH_TENANTS:-50}
idle_seconds=${BENCH_IDLE_SECONDS:-60}
warmup=${BENCH_WARMUP_SECONDS:-10}
oxker=${OXKER:-$(command -v oxker || echo /work/.peers/oxker/bin/oxker)}
ns="bencht$$"
sock="tenantctl-bench-$$"
work=$(mktemp -d)

source "$root/bench/lib.sh"

cleanup() {
    tmux -L "$sock" kill-server 2>/dev/null || true
    remove_namespace "$ns"
    rm -rf "$work"
}
trap cleanup EXIT
command -v tmux >/dev/null || { echo "bench/tui.sh needs tmux (apt-get install tmux)"; exit 1; }

cargo build --release --quiet
bin="$root/target/release/tenantctl"

# A repository of $tenants tenants over the example plans and themes.
tenants_repo "$root" "$work" "$tenants"
(cd "$work" && "$bin" --namespace "$ns" apply --auto-approve > "$work/apply.log" 2>&1) \
    || { cat "$work/apply.log"; exit 1; }
echo "converged: $tenants tenants"

ticks=$(getconf CLK_TCK)
dockerd=$(pgrep -xo dockerd || true)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure NAME COMMAND...: runs COMMAND in a tmux pane, warms up, then samples its process.
measure() {
    local name=$1; shift
    tmux -L "$sock" new-session -d -s bench -x 160 -y 50 -c "$work" "$@"
    sleep 1
    local pane_pid pid
    pane_pid=$(tmux -L "$sock" list-panes -t bench -F '#{pane_pid}')
    pid=$pane_pid
    sleep "$warmup"
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "$name exited early:"; tmux -L "$sock" capture-pane -p -t bench || true; exit 1
    fi
    local d1 d2 t1 t2
    d1=$([ -n "$dockerd" ] && cpu_ticks "$dockerd" || echo 0)
    t1=$(cpu_ticks "$pid")
    sleep "$idle_seconds"
    t2=$(cpu_ticks "$pid")
    d2=$([ -n "$dockerd" ] && cpu_ticks "$dockerd" || echo 0)
    local rss hwm
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    tmux -L "$sock" capture-pane -p -t bench > "$work/$name.screen" || true
    tmux -L "$sock" kill-server 2>/dev/null || true
    sleep 1
    awk -v n="$name" -v d=$((t2 - t1)) -v e=$((d2 - d1)) -v t="$ticks" -v s="$idle_seconds" \
        -v r="$rss" -v h="$hwm" \
        'BEGIN {printf "%-34s CPU %6.2f%%   RSS %4d MiB (peak %4d MiB)   dockerd CPU %6.2f%%\n", n, 100*d/t/s, r/1024, h/1024, 100*e/t/s}'
}

echo "idle over ${idle_seconds}s after ${warmup}s warm-up, $tenants tenants, % of one core:"
export TENANTCTL_NAMESPACE="$ns"
measure "tenantctl tui (in-process loop)" "$bin" tui
grep -q "$tenants tenants" "$work/tenantctl tui (in-process loop).screen" \
    || { echo "the dashboard did not show $tenants tenants:"; cat "$work/tenantctl tui (in-process loop).screen"; exit 1; }
measure "tenantctl tui --read-only" "$bin" tui --read-only
if [ -x "$oxker" ]; then
    measure "oxker $("$oxker" --version 2>/dev/null | awk '{print $2}')" "$oxker"
else
    echo "oxker: not installed (cargo install oxker --root /work/.peers/oxker), skipped"
fi
measure "docker stats" docker stats
