#!/usr/bin/env bash
# One `tenantctl meter` pass over N running tenants (default 200), reading the containers'
# counters two ways, side by side on the same tenants in one run:
#   cgroup   `tenantctl meter --stats-source cgroup`: each container's cgroup files and net/dev
#   engine   `tenantctl meter --stats-source engine`: the engine's stats endpoint per container
#            (what every pass did before the cgroup reader)
# For each pass: wall seconds (whole process), CPU-seconds of tenantctl (user+sys) and of dockerd
# (utime+stime from /proc/<pid>/stat before and after), and the samples stored. Runs are
# interleaved (cgroup 1, engine 1, cgroup 2, …), each after the CPUs are mostly idle. Both passes
# include the whole pass: observing the namespace, the site counters over loopback, the engine's
# disk-usage request, the rollup. The tenants are brought up once by `tenantctl apply` (not timed).
# Result: one Markdown table on stdout; progress on stderr.
#
#   cargo build --release                       # the benchmark times target/release/tenantctl
#   bash bench/meter.sh                         # from anywhere: 200 tenants, 2 runs per source
#   BENCH_TENANTS=50 BENCH_RUNS=3 bash bench/meter.sh
#   BENCH_SOURCES="cgroup engine auto" bash bench/meter.sh
#   TENANTCTL=/path/to/tenantctl bash bench/meter.sh
#
# Everything it makes lives in the namespace bm<pid> (and bm<pid>w for the warm-up), removed on
# exit (trap).
set -euo pipefail
# EPOCHREALTIME and awk must agree on the decimal point.
export LC_ALL=C
# Errors of the Rust tools in one line, not a backtrace.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

N=${BENCH_TENANTS:-200}
RUNS=${BENCH_RUNS:-2}                     # timed passes per source, interleaved
SOURCES=${BENCH_SOURCES:-"cgroup engine"}
QUIET_IDLE=${BENCH_QUIET_IDLE:-80}        # % of CPU idle wanted before a pass starts…
QUIET_WAIT=${BENCH_QUIET_WAIT:-120}       # …waiting at most this long for it (others share the host)
STEP_TIMEOUT=${BENCH_TIMEOUT:-1200}       # no single command may take longer than this
TENANTCTL=${TENANTCTL:-$ROOT/target/release/tenantctl}

[[ $N =~ ^[1-9][0-9]*$ && $N -le 4096 ]] || { echo "BENCH_TENANTS: 1 to 4096 tenants (a /28 each in a /16)" >&2; exit 1; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_RUNS: 1 or more" >&2; exit 1; }
for source in $SOURCES; do
  [[ $source == auto || $source == cgroup || $source == engine ]] || { echo "BENCH_SOURCES: auto, cgroup and/or engine, not $source" >&2; exit 1; }
done
if [[ -z ${EPOCHREALTIME:-} ]]; then
  echo "bench/meter.sh needs bash >= 5 (EPOCHREALTIME)" >&2
  exit 1
fi
for tool in docker git awk timeout; do
  command -v "$tool" >/dev/null || { echo "bench/meter.sh needs $tool" >&2; exit 1; }
done
if [[ ! -x $TENANTCTL ]]; then
  echo "no tenantctl binary at $TENANTCTL; build it first (from $ROOT): cargo build --release" >&2
  exit 1
fi
if ! "$TENANTCTL" meter --help 2>&1 | grep -q -- '--stats-source'; then
  echo "$TENANTCTL has no \`meter --stats-source\` (an older build?); rebuild it: cargo build --release" >&2
  exit 1
fi
docker version >/dev/null || { echo "the Docker engine does not answer" >&2; exit 1; }
DOCKERD_PID=$(pidof dockerd 2>/dev/null | awk '{ print $1 }' || true)
if [[ -z $DOCKERD_PID || ! -r /proc/$DOCKERD_PID/stat ]]; then
  echo "cannot read dockerd's /proc/<pid>/stat on this host: its CPU-seconds would be missing" >&2
  exit 1
fi

ID=bm$$
NS=$ID
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tenantctl-bench-meter.XXXXXX")
CREATED=()

# Progress goes to the original stderr (fd 3), also from inside a redirected `time` group.
exec 3>&2
log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&3; }

on_exit() {
  local status=$?
  trap - EXIT INT TERM
  local ns
  for ns in "${CREATED[@]}"; do
    log "removing namespace $ns"
    remove_namespace "$ns" || true
  done
  if [[ -n ${BENCH_KEEP:-} ]]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A /16 of 10.252–10.255 in which no network on the engine has a subnet (two runs side by side
# do not share one; away from the other benchmarks' and the test suite's pools).
engine_subnets=$(docker network ls -q | xargs -r docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' 2>/dev/null | tr ' ' '\n' || true)
POOL=
for octet in 252 253 254 255; do
  if ! grep -qE "^10\.$octet\." <<<"$engine_subnets"; then POOL=10.$octet.0.0/16; break; fi
done
[[ -n $POOL ]] || { echo "10.252–10.255 all have networks on this engine (other runs?)" >&2; exit 1; }

# ----------------------------------------------------------------------------- the tenants

HZ=$(getconf CLK_TCK)
dockerd_cpu() { awk -v hz="$HZ" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$DOCKERD_PID/stat"; }

# Idle % of all CPUs over the next $1 seconds, from /proc/stat (idle + iowait over the total).
idle_pct() {
  local -a a b
  read -r -a a </proc/stat
  sleep "$1"
  read -r -a b </proc/stat
  awk -v a="${a[*]:1:8}" -v b="${b[*]:1:8}" 'BEGIN {
    split(a, x); split(b, y)
    for (i = 1; i <= 8; i++) { d = y[i] - x[i]; t += d; if (i == 4 || i == 5) idle += d }
    printf "%d", t ? 100 * idle / t : 100
  }'
}
IDLE_BEFORE=
wait_quiet() {
  local deadline=$((SECONDS + QUIET_WAIT))
  while :; do
    IDLE_BEFORE=$(idle_pct 1)
    ((IDLE_BEFORE >= QUIET_IDLE)) && return 0
    if ((SECONDS >= deadline)); then
      log "the machine is still busy (${IDLE_BEFORE}% idle); running anyway"
      return 0
    fi
  done
}

REPO=$WORK/repo
mkdir -p "$REPO"
tenants_repo "$ROOT" "$REPO" "$N"
DB="sqlite://$WORK/meter.db"
tctl() { "$TENANTCTL" --namespace "$NS" --repo "$REPO" --database-url "$DB" "$@"; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
FOREIGN=$(docker ps -q | wc -l)
log "$N tenants in namespace $NS (pool $POOL), sources: $SOURCES, $RUNS runs each; work dir $WORK"
CREATED+=("$NS")
log "bringing the tenants up (tenantctl apply, not timed)"
start=$EPOCHREALTIME
timeout "$STEP_TIMEOUT" "$TENANTCTL" --namespace "$NS" --repo "$REPO" --database-url "$DB" \
  apply --auto-approve --no-color --subnet-pool "$POOL" >"$WORK/apply.log" 2>&1 || {
  log "apply failed; its last lines:"
  tail -n 20 "$WORK/apply.log" >&2
  exit 1
}
up=$(docker ps -q --filter "label=tenantctl.namespace=$NS" | wc -l)
log "$up containers running after $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"
((up >= N)) || { log "expected $N running containers"; exit 1; }
# An untimed pass: the database's first rollup buckets, the page cache.
tctl meter >"$WORK/warm.log" 2>&1 || { cat "$WORK/warm.log" >&2; exit 1; }

# ----------------------------------------------------------------------------- the passes

# dockerd's CPU-seconds per second while nothing meters (the tenants' health checks run
# meanwhile: the engine execs each probe), over $BACKGROUND seconds.
BACKGROUND=${BENCH_BACKGROUND:-5}
background_rate() {
  local b0 b1
  b0=$(dockerd_cpu)
  sleep "$BACKGROUND"
  b1=$(dockerd_cpu)
  awk -v a="$b0" -v b="$b1" -v s="$BACKGROUND" 'BEGIN { printf "%.4f", (b - a) / s }'
}

# pass SOURCE RUN: one timed meter pass; appends "wall tenantctl dockerd idle samples
# background" to $WORK/pass.SOURCE.
pass() {
  local source=$1 run=$2 start end d0 d1 rate out=$WORK/pass.$1.$2.json TIMEFORMAT='%U %S'
  wait_quiet
  rate=$(background_rate)
  d0=$(dockerd_cpu)
  start=$EPOCHREALTIME
  if ! { time timeout "$STEP_TIMEOUT" "$TENANTCTL" --namespace "$NS" --repo "$REPO" \
    --database-url "$DB" meter --stats-source "$source" --output json >"$out" 2>"$WORK/pass.err"; } 2>"$WORK/rusage"; then
    log "meter --stats-source $source failed:"
    cat "$WORK/pass.err" >&2
    return 1
  fi
  end=$EPOCHREALTIME
  d1=$(dockerd_cpu)
  local samples read_from
  samples=$(grep -c '"memory_bytes"' "$out" || true)
  read_from=$(grep -cE "^    \"t[0-9]+\": \"$source\"" "$out" || true)
  local wall own dockerd
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
  own=$(awk '{ printf "%.2f", $1 + $2 }' "$WORK/rusage")
  dockerd=$(awk -v a="$d0" -v b="$d1" 'BEGIN { printf "%.2f", b - a }')
  local background
  background=$(awk -v r="$rate" -v w="$wall" 'BEGIN { printf "%.2f", r * w }')
  log "$source run $run: ${wall} s wall, tenantctl ${own} CPU-s, dockerd ${dockerd} CPU-s (${background} without a pass), $samples samples ($read_from read from $source), ${IDLE_BEFORE}% idle before"
  if ((samples != N)); then
    log "expected $N samples; stderr:"
    cat "$WORK/pass.err" >&2
    return 1
  fi
  echo "$wall $own $dockerd $IDLE_BEFORE $read_from $background" >>"$WORK/pass.$source"
}

for ((run = 1; run <= RUNS; run++)); do
  for source in $SOURCES; do
    pass "$source" "$run"
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ----------------------------------------------------------------------------- the table

ENGINE=$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')
CGROUP=$(docker info --format 'cgroup v{{.CgroupVersion}}, {{.CgroupDriver}} driver')
echo
echo "### One meter pass over $N tenants ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "$(nproc) CPUs, Docker $ENGINE, $CGROUP; load average before $LOAD_BEFORE, after $LOAD_AFTER;"
echo "$FOREIGN containers of others on the engine. Each pass: \`tenantctl meter --stats-source SOURCE\`."
echo "\"dockerd without a pass\": dockerd's CPU-seconds in the same wall time just before the pass"
echo "(the tenants' health-check execs); the pass's own engine cost is the difference."
echo
echo "| source | run | wall (s) | tenantctl CPU-s | dockerd CPU-s | dockerd without a pass | tenantctl + dockerd CPU-s | idle before | read from SOURCE |"
echo "|---|---|---|---|---|---|---|---|---|"
for source in $SOURCES; do
  awk -v s="$source" -v n="$N" '{
    printf "| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %d %% | %d of %d |\n", s, NR, $1, $2, $3, $6, $2 + $3, $4, $5, n
  }' "$WORK/pass.$source"
done
