#!/usr/bin/env bash
# Records the pictures of the dashboard in the README from a real run: the example repository
# applied in a namespace of its own, `tenantctl tui` in a real terminal (tmux, 120x32), its screen
# captured with its colours (`tmux capture-pane -e`) and rendered to SVG with `rich` (PyPI:
# `pip install rich`). Writes docs/dashboard.svg (the table) and docs/dashboard-detail.svg (a
# tenant's detail and logs). Run from the repository root: bash scripts/record-dashboard.sh
set -euo pipefail
root=$(pwd)
ns="record$$"
sock="tenantctl-record-$$"
work=$(mktemp -d)
pool=${TENANTCTL_SUBNET_POOL:-10.140.0.0/20}

source "$root/bench/lib.sh"

cleanup() {
    tmux -L "$sock" kill-server 2>/dev/null || true
    remove_namespace "$ns"
    rm -rf "$work"
}
trap cleanup EXIT
command -v tmux >/dev/null || { echo "needs tmux (apt-get install tmux)"; exit 1; }
python3 -c 'import rich' 2>/dev/null || { echo "needs rich (pip install rich)"; exit 1; }

cargo build --quiet
bin="$root/target/debug/tenantctl"

# The example repository, applied.
for dir in plans themes tenants; do cp -r "$root/$dir" "$work/"; done
commit_all "$work" "example state"
(cd "$work" && TENANTCTL_SUBNET_POOL="$pool" "$bin" --namespace "$ns" apply --auto-approve \
    > "$work/apply.log" 2>&1) || { cat "$work/apply.log"; exit 1; }

# capture NAME: the pane's screen with its colours, rendered to docs/NAME.svg.
capture() {
    tmux -L "$sock" capture-pane -e -p -t rec > "$work/$1.ansi"
    python3 - "$work/$1.ansi" "$root/docs/$1.svg" <<'PY'
import sys
from rich.console import Console
from rich.text import Text
screen = open(sys.argv[1], encoding="utf-8").read().rstrip("\n")
console = Console(record=True, width=120, force_terminal=True, color_system="truecolor", file=open("/dev/null", "w"))
console.print(Text.from_ansi(screen), end="")
console.save_svg(sys.argv[2], title="tenantctl tui")
PY
    echo "wrote docs/$1.svg"
}

# wait_for TEXT: until the pane shows TEXT (at most 90 s).
wait_for() {
    for _ in $(seq 1 180); do
        tmux -L "$sock" capture-pane -p -t rec | grep -qF "$1" && return 0
        sleep 0.5
    done
    echo "the dashboard never showed '$1':"; tmux -L "$sock" capture-pane -p -t rec; exit 1
}

tmux -L "$sock" new-session -d -s rec -x 120 -y 32 \
    "cd '$work' && TERM=xterm-256color COLORTERM=truecolor '$bin' --namespace '$ns' tui --read-only"
wait_for "globex"
# The engine's first health checks (one interval after each start), then a few stats samples.
wait_for "Healthy 5"
sleep 3
capture dashboard
# The first tenant's detail and its logs.
tmux -L "$sock" send-keys -t rec Enter
sleep 3
capture dashboard-detail
