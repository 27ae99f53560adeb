#!/usr/bin/env bash
# `--runtime docker` against `--runtime swarm`, side by side in one run on this engine:
#   cold     `tenantctl --runtime MODE apply --auto-approve` of N tenants (default 200) from
#            nothing, RUNS times per mode (default 3), interleaved: docker 1, swarm 1, docker 2, …
#            Each run has its own namespace, SQLite file and repository-wide subnet pool, and is
#            removed (services, task containers, containers, networks, volumes) before the next.
#   no-op    the same apply again with nothing to do (whole process), NOOP_RUNS per mode
#            (default 10), spread over the cold runs; each must print `No changes.`
# Parallelism is apply's default (10) for both. Results: a Markdown table on stdout; raw samples
# appended to bench/results.md.
#
#   cargo build --release                  # the benchmark does not build; it times target/release
#   bash bench/swarm.sh                    # from anywhere; the engine must be a swarm manager
#   N=50 RUNS=5 bash bench/swarm.sh
#   INIT_SWARM=1 bash bench/swarm.sh       # makes this engine a one-node swarm, leaves it on exit
#   MODES=docker N=3 RUNS=1 bash bench/swarm.sh   # one mode only (no swarm needed for docker)
#
# Every object it makes lives in namespaces named bsw<pid>…, removed on exit (trap).
set -euo pipefail
# EPOCHREALTIME and awk must agree on the decimal point.
export LC_ALL=C
# Errors of the Rust tools in one line, not a backtrace.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

N=${N:-200}
RUNS=${RUNS:-3}                          # cold runs per mode, interleaved
NOOP_RUNS=${NOOP_RUNS:-10}               # no-op applies per mode, spread over the cold runs
MODES=${MODES:-"docker swarm"}
SETTLE=${BENCH_SETTLE:-3}                # seconds for the engine after a cleanup
QUIET_IDLE=${BENCH_QUIET_IDLE:-80}       # % of CPU idle wanted before a cold run starts…
QUIET_WAIT=${BENCH_QUIET_WAIT:-120}      # …waiting at most this long for it (others share the host)
STEP_TIMEOUT=${BENCH_TIMEOUT:-1200}      # no single apply may take longer than this
CONVERGE_TIMEOUT=${BENCH_CONVERGE_TIMEOUT:-300} # after apply returns, all N up within this
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results.md}
TENANTCTL=${TENANTCTL:-$ROOT/target/release/tenantctl}

[[ $N =~ ^[1-9][0-9]*$ && $N -le 4096 ]] || { echo "N: 1 to 4096 tenants (a /28 each in a /16)" >&2; exit 1; }
[[ $RUNS =~ ^[1-9][0-9]*$ && $NOOP_RUNS =~ ^[0-9]+$ ]] || { echo "RUNS ≥ 1, NOOP_RUNS ≥ 0" >&2; exit 1; }
for mode in $MODES; do
  [[ $mode == docker || $mode == swarm ]] || { echo "MODES: docker and/or swarm, not $mode" >&2; exit 1; }
done
# bash 5 gives microsecond wall time without forking `date`.
if [[ -z ${EPOCHREALTIME:-} ]]; then
  echo "bench/swarm.sh needs bash >= 5 (EPOCHREALTIME)" >&2
  exit 1
fi
for tool in docker git awk timeout; do
  command -v "$tool" >/dev/null || { echo "bench/swarm.sh needs $tool" >&2; exit 1; }
done

# ----------------------------------------------------------------------------- preconditions

if [[ ! -x $TENANTCTL ]]; then
  echo "no tenantctl binary at $TENANTCTL; build it first (from $ROOT):" >&2
  echo "  cargo build --release" >&2
  exit 1
fi
if ! "$TENANTCTL" --help 2>&1 | grep -q -- '--runtime'; then
  echo "$TENANTCTL has no --runtime flag (an older build?); rebuild it: cargo build --release" >&2
  exit 1
fi
docker version >/dev/null || { echo "the Docker engine does not answer" >&2; exit 1; }

# ----------------------------------------------------------------------------- state, cleanup

ID=bsw$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tenantctl-bench-swarm.XXXXXX")
CREATED=() # namespaces made, for the trap
SWARM_MADE='' # set when this run made the engine a swarm manager: it leaves on exit

# Progress goes to the original stderr (fd 3), also from inside a redirected `time` group.
exec 3>&2
log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&3; }

on_exit() {
  local status=$? ns pass
  trap - EXIT INT TERM
  if ((${#CREATED[@]})); then
    log "cleaning up ${#CREATED[@]} namespaces"
    # Twice: a create the engine was still finishing when a failed run ended can land after
    # the first pass listed the namespace.
    for pass in 1 2; do
      for ns in "${CREATED[@]}"; do remove_namespace "$ns" || true; done
      ((pass == 2)) || sleep 2
    done
  fi
  if [[ -n $SWARM_MADE ]]; then
    log "leaving the swarm this benchmark made"
    docker swarm leave --force >/dev/null 2>&1 || log "docker swarm leave --force failed; leave it by hand"
  fi
  if [[ -n ${BENCH_KEEP:-} ]]; then
    log "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ " $MODES " == *" swarm "* && $(docker info --format '{{.Swarm.ControlAvailable}}') != true ]]; then
  state=$(docker info --format '{{.Swarm.LocalNodeState}}')
  if [[ ${INIT_SWARM:-} == 1 && $state == inactive ]]; then
    echo "INIT_SWARM=1: making this engine a one-node swarm (left again on exit)" >&2
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
    SWARM_MADE=1
  elif [[ $state == inactive ]]; then
    echo "this engine is not a swarm manager (swarm state: $state). Make it one:" >&2
    echo "  docker swarm init --advertise-addr 127.0.0.1" >&2
    echo "or let the benchmark do it and leave the swarm on exit: INIT_SWARM=1 bash bench/swarm.sh" >&2
    echo "(or time docker mode only: MODES=docker bash bench/swarm.sh)" >&2
    exit 1
  else
    echo "this engine is in a swarm but not a manager (swarm state: $state); run the benchmark" >&2
    echo "on a manager node, or point DOCKER_HOST at one (docker node promote, on a manager)" >&2
    exit 1
  fi
fi

# Subnet pools: one /16 per mode and per run of this script, from 10.140.0.0–10.149.255.255
# (away from the engine's and swarm's default pools, the test suite's 10.100–139, 10.150–249,
# 10.213, 10.233, and bench/apply.sh's 10.250). Of its five pairs, the first from a pid-chosen
# start in which no network on the engine has a subnet, so two runs side by side do not share one.
engine_subnets=$(docker network ls -q | xargs -r docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' 2>/dev/null | tr ' ' '\n' || true)
for ((k = 0; k < 5; k++)); do
  pair=$(((($$ + k) % 5) * 2 + 140))
  if ! grep -qE "^10\.($pair|$((pair + 1)))\." <<<"$engine_subnets"; then break; fi
done
((k < 5)) || { echo "every pool pair in 10.140–10.149 has networks on this engine (other runs?)" >&2; exit 1; }
declare -A POOL=([docker]="10.$pair.0.0/16" [swarm]="10.$((pair + 1)).0.0/16")

# ----------------------------------------------------------------------------- repositories

REPO=$WORK/repo
WARM_REPO=$WORK/warm
mkdir -p "$REPO" "$WARM_REPO"
tenants_repo "$ROOT" "$REPO" "$N"
tenants_repo "$ROOT" "$WARM_REPO" 1
"$TENANTCTL" --repo "$REPO" validate >/dev/null

# ----------------------------------------------------------------------------- the site image

# tenantctl rebuilds the site image when its tenantctl.exe-fingerprint label (size-mtime-inode of
# the binary, src/runtime/change.rs) is not this binary's; other checkouts on this engine retag
# tenantctl-site:<version> from their own binaries. So: check before every timed run, rebuild
# outside the timing (an untimed one-tenant apply), and discard a run during which it changed.
VERSION=$(awk -F'"' '/^version *=/ { print $2; exit }' "$ROOT/Cargo.toml")
SITE_TAG=tenantctl-site:$VERSION
FINGERPRINT=$(stat -c '%s-%.9Y-%i' "$TENANTCTL")
image_fingerprint() {
  docker image inspect -f '{{index .Config.Labels "tenantctl.exe-fingerprint"}}' "$SITE_TAG" 2>/dev/null || true
}
image_id() { docker image inspect -f '{{.Id}}' "$SITE_TAG" 2>/dev/null || true; }

WARMUPS=0
# warm_up MODE: an untimed one-tenant apply in MODE in a namespace of its own, then removed.
warm_up() {
  WARMUPS=$((WARMUPS + 1))
  local mode=$1 ns=${ID}w$WARMUPS
  CREATED+=("$ns")
  timeout "$STEP_TIMEOUT" "$TENANTCTL" --runtime "$mode" --namespace "$ns" --repo "$WARM_REPO" \
    --database-url "sqlite://$WORK/$ns.db" apply --auto-approve --no-color \
    --subnet-pool "${POOL[$mode]}" >"$WORK/$ns.log" 2>&1 || {
    log "warm-up apply ($mode) failed:"
    cat "$WORK/$ns.log" >&2
    return 1
  }
  remove_namespace "$ns"
}
ensure_site_image() {
  [[ $(image_fingerprint) == "$FINGERPRINT" ]] && return 0
  log "building $SITE_TAG from this binary (one-tenant docker apply, not timed)"
  warm_up docker
}

# ----------------------------------------------------------------------------- timing

HZ=$(getconf CLK_TCK)
# CPU-seconds the whole machine spent busy so far (all CPUs; /proc/stat counts in USER_HZ).
machine_cpu() { awk -v hz="$HZ" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8) / hz }' /proc/stat; }
# CPU-seconds of the engine daemon (swarmkit's manager and agent run inside it) and its reaped
# children, when it runs on this host and we may read it.
DOCKERD_PID=$(pidof dockerd 2>/dev/null | awk '{ print $1 }' || true)
dockerd_cpu() {
  if [[ -n $DOCKERD_PID && -r /proc/$DOCKERD_PID/stat ]]; then
    awk -v hz="$HZ" '{ printf "%.2f", ($14 + $15 + $16 + $17) / hz }' "/proc/$DOCKERD_PID/stat"
  fi
}

# timed CMD…: runs it under a timeout, output to $LOG. Sets ELAPSED (seconds, whole process),
# OWN_CPU (user+sys of the command), DOCKERD_CPU and MACHINE_CPU (busy CPU-seconds meanwhile).
LOG='' ELAPSED='' OWN_CPU='' DOCKERD_CPU='' MACHINE_CPU=''
timed() {
  local start end m0 m1 d0 d1 TIMEFORMAT='%U %S'
  m0=$(machine_cpu) d0=$(dockerd_cpu)
  start=$EPOCHREALTIME
  if ! { time timeout "$STEP_TIMEOUT" "$@" >"$LOG" 2>&1; } 2>"$WORK/rusage"; then
    log "FAILED ($*); last lines of $LOG:"
    tail -n 20 "$LOG" >&2
    return 1
  fi
  end=$EPOCHREALTIME
  m1=$(machine_cpu) d1=$(dockerd_cpu)
  ELAPSED=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
  OWN_CPU=$(awk '{ printf "%.2f", $1 + $2 }' "$WORK/rusage")
  MACHINE_CPU=$(awk -v a="$m0" -v b="$m1" 'BEGIN { printf "%.2f", b - a }')
  DOCKERD_CPU=$([[ -n $d0 && -n $d1 ]] && awk -v a="$d0" -v b="$d1" 'BEGIN { printf "%.2f", b - a }' || echo "-")
}

# Idle % of all CPUs over the next $1 seconds (idle + iowait over the total).
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

# This host is shared: before a cold run, wait until the CPUs are mostly idle (at most
# QUIET_WAIT seconds) and keep how idle they were.
IDLE_BEFORE=
BUSY_STARTS=0
settle() {
  sleep "$SETTLE"
  local deadline=$((SECONDS + QUIET_WAIT))
  while :; do
    IDLE_BEFORE=$(idle_pct 1)
    ((IDLE_BEFORE >= QUIET_IDLE)) && return 0
    if ((SECONDS >= deadline)); then
      BUSY_STARTS=$((BUSY_STARTS + 1))
      log "the machine is still busy (${IDLE_BEFORE}% idle); running anyway"
      return 0
    fi
  done
}

# up_count MODE NS: tenants of NS that are up — docker: running containers; swarm: services
# with every desired task running (swarm counts a task with a health check as running only once
# it is healthy).
up_count() {
  if [[ $1 == docker ]]; then
    docker ps -q --filter "label=tenantctl.namespace=$2" --filter status=running | wc -l
  else
    docker service ls --filter "label=tenantctl.namespace=$2" --format '{{.Replicas}}' |
      awk -F'[/ ]' '$2 > 0 && $1 == $2 { n++ } END { print n + 0 }'
  fi
}

# wait_up MODE NS: until all N tenants are up; sets UP_AFTER (seconds after apply returned, 0 if
# they already were). apply waits for health itself; this guards the comparison against a mode
# whose apply returned before its tenants ran.
UP_AFTER=
wait_up() {
  local start=$EPOCHREALTIME deadline=$((SECONDS + CONVERGE_TIMEOUT)) up
  while :; do
    up=$(up_count "$1" "$2")
    ((up == N)) && break
    if ((SECONDS >= deadline)); then
      log "$1: only $up of $N tenants up ${CONVERGE_TIMEOUT}s after apply returned"
      return 1
    fi
    sleep 0.25
  done
  UP_AFTER=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { d = b - a; printf "%.3f", d < 0.3 ? 0 : d }')
}

# noop_share RUN: how many of NOOP_RUNS are taken after cold run RUN (the first runs take the
# remainder), so each mode gets exactly NOOP_RUNS samples from all of its namespaces.
noop_share() { echo $((NOOP_RUNS / RUNS + ($1 <= NOOP_RUNS % RUNS ? 1 : 0))); }

# run_mode MODE RUN: one cold apply of N tenants in MODE from nothing, its no-op reruns, removal.
run_mode() {
  local mode=$1 run=$2 attempt ns before after i
  # A run during which someone retagged the site image may include a rebuild: discard it and
  # run again (at most 3 times), so the figure is tenantctl's own work.
  for attempt in 1 2 3; do
    ensure_site_image
    settle
    ns=$ID${mode:0:1}$run$([[ $attempt == 1 ]] || echo "r$attempt")
    CREATED+=("$ns")
    local cmd=("$TENANTCTL" --runtime "$mode" --namespace "$ns" --repo "$REPO"
      --database-url "sqlite://$WORK/$ns.db")
    LOG=$WORK/$ns.cold.log
    before=$(image_id)
    timed "${cmd[@]}" apply --auto-approve --no-color --subnet-pool "${POOL[$mode]}"
    after=$(image_id)
    if [[ $before != "$after" || $(image_fingerprint) != "$FINGERPRINT" ]]; then
      log "$mode run $run: the site image changed during the run; discarding it"
      remove_namespace "$ns"
      continue
    fi
    wait_up "$mode" "$ns"
    echo "$ELAPSED $UP_AFTER $IDLE_BEFORE $OWN_CPU $DOCKERD_CPU $MACHINE_CPU" >>"$WORK/cold.$mode"
    log "$mode run $run: cold ${ELAPSED}s (all $N up +${UP_AFTER}s; tenantctl ${OWN_CPU} CPU-s, dockerd ${DOCKERD_CPU})"
    LOG=$WORK/$ns.noop.log
    "${cmd[@]}" apply --auto-approve --no-color >"$LOG" 2>&1 || true # untimed: warms the page cache
    for ((i = 1; i <= $(noop_share "$run"); i++)); do
      timed "${cmd[@]}" apply --auto-approve --no-color
      if ! grep -q 'No changes\.' "$LOG"; then
        log "$mode: the apply after a cold one was not a no-op:"
        cat "$LOG" >&2
        return 1
      fi
      echo "$ELAPSED" >>"$WORK/noop.$mode"
    done
    log "$mode run $run: removing $N tenants (not timed)"
    remove_namespace "$ns"
    return 0
  done
  log "$mode: the site image kept changing under the benchmark; giving up"
  return 1
}

# ----------------------------------------------------------------------------- the runs

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
FOREIGN_BEFORE=$(docker ps -q | wc -l)
log "$N tenants, modes: $MODES; $RUNS cold runs each (interleaved), $NOOP_RUNS no-op applies each;"
log "pools: docker ${POOL[docker]}, swarm ${POOL[swarm]}; work dir $WORK"
ensure_site_image
for mode in $MODES; do
  log "warm-up: one-tenant $mode apply (not timed)"
  warm_up "$mode"
done
for ((run = 1; run <= RUNS; run++)); do
  for mode in $MODES; do
    run_mode "$mode" "$run"
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ----------------------------------------------------------------------------- the table

# stat_of FILE median|min|max [COLUMN] → seconds, or empty when there are no samples
stat_of() {
  local file=$1 column=${3:-1}
  [[ -s $file ]] || return 0
  sort -g -k"$column,$column" "$file" | awk -v what="$2" -v col="$column" '
    { v[NR] = $col }
    END {
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      if (what == "min") m = v[1]
      if (what == "max") m = v[NR]
      printf (m < 1 ? "%.3f" : "%.2f"), m
    }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
or_dash() { [[ -n $1 ]] && echo "$1" || echo "—"; }
# cold + time until all up, per sample, for the "until all up" column
cold_up() { awk '{ printf "%.3f\n", $1 + $2 }' "$1" >"$1.up"; }

table() {
  echo "| --runtime | cold median (s) | cold min / max (s) | cold + until all up, median (s) | no-op median (s) | no-op min / max (s) | tenantctl CPU-s | dockerd CPU-s | machine CPU-s |"
  echo "|---|---|---|---|---|---|---|---|---|"
  local mode c n
  for mode in docker swarm; do
    c=$WORK/cold.$mode n=$WORK/noop.$mode
    [[ -s $c ]] || continue
    cold_up "$c"
    printf '| %s | %s | %s / %s | %s | %s | %s / %s | %s | %s | %s |\n' "$mode" \
      "$(stat_of "$c" median)" "$(stat_of "$c" min)" "$(stat_of "$c" max)" "$(stat_of "$c.up" median)" \
      "$(or_dash "$(stat_of "$n" median)")" "$(or_dash "$(stat_of "$n" min)")" "$(or_dash "$(stat_of "$n" max)")" \
      "$(stat_of "$c" median 4)" "$(or_dash "$(stat_of "$c" median 5)")" "$(stat_of "$c" median 6)"
  done
  if [[ -s $WORK/cold.docker && -s $WORK/cold.swarm ]]; then
    echo
    printf 'swarm ÷ docker (medians): cold apply %s, cold apply + until all up %s\n' \
      "$(ratio "$(stat_of "$WORK/cold.swarm" median)" "$(stat_of "$WORK/cold.docker" median)")" \
      "$(ratio "$(stat_of "$WORK/cold.swarm.up" median)" "$(stat_of "$WORK/cold.docker.up" median)")"
  fi
}

ENGINE=$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')
SWARM_DESC=$(docker info --format '{{.Swarm.LocalNodeState}}, {{.Swarm.Nodes}} node(s), {{.Swarm.Managers}} manager(s)' 2>/dev/null || echo unknown)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=''
if [[ -n $(git -C "$ROOT" status --porcelain -- src Cargo.toml 2>/dev/null) ]]; then DIRTY=" (src/ modified)"; fi
TABLE=$(table)
{
  echo
  echo "# bench/swarm.sh results"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'); tenantctl $VERSION at $COMMIT$DIRTY; Docker engine $ENGINE;"
  echo "swarm: $SWARM_DESC; $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)."
  echo "$N tenants, apply's default parallelism (10), $RUNS cold runs per mode (interleaved, each from"
  echo "nothing), $NOOP_RUNS no-op applies per mode; whole-process wall time. Load average before/after:"
  echo "$LOAD_BEFORE / $LOAD_AFTER; containers already running on the engine: $FOREIGN_BEFORE; cold runs"
  echo "started on a busy machine (under $QUIET_IDLE% idle after waiting ${QUIET_WAIT}s): $BUSY_STARTS."
  echo
  echo "$TABLE"
  echo
  echo "Raw samples in run order. Cold: seconds (+ seconds until all $N were up after apply"
  echo "returned; % CPU idle in the second before; tenantctl / dockerd / machine CPU-seconds):"
  echo
  for mode in docker swarm; do
    [[ -s $WORK/cold.$mode ]] || continue
    printf -- '- %s cold: %s\n' "$mode" "$(awk '{ printf "%s%s (+%s; %s%%; %s/%s/%s)", (NR > 1 ? ", " : ""), $1, $2, $3, $4, $5, $6 }' "$WORK/cold.$mode")"
    if [[ -s $WORK/noop.$mode ]]; then
      printf -- '- %s no-op: %s\n' "$mode" "$(paste -sd' ' "$WORK/noop.$mode" | sed 's/ /, /g')"
    fi
  done
} >"$WORK/results.md"
cat "$WORK/results.md" >>"$RESULTS"
log "appended to $RESULTS"
echo
echo "$TABLE"
