#!/usr/bin/env bash
# Times, in one run on this machine, bringing up the same N tenants (default 50) three ways:
#   tenantctl    `tenantctl apply --auto-approve --parallelism 10` (waits until every site answers)
#   compose      the same containers as `docker-compose up -d` services (Debian's compose 1.29)
#   floor        raw create+start through the Engine API at the same parallelism
#                (examples/raw_floor.rs), and "floor+health": the floor plus waiting until each
#                site answers /health on its loopback port, which tenantctl's apply includes
# and the no-op rerun of each. Results: a Markdown table on stdout and in bench/results.md.
#
#   bash bench/apply.sh                      # from the repository root
#   BENCH_RUNS=5 BENCH_TENANTS=50 bash bench/apply.sh
#
# Every object it makes lives in namespaces/projects named b<pid>…, removed on exit (trap).
set -euo pipefail
# EPOCHREALTIME and awk must agree on the decimal point.
export LC_ALL=C
# Errors of the Rust tools in one line, not a backtrace.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

TENANTS=${BENCH_TENANTS:-50}
RUNS=${BENCH_RUNS:-3}              # cold runs per contender, interleaved
NOOP_RUNS=${BENCH_NOOP_RUNS:-5}    # no-op reruns timed after each cold run
PARALLELISM=${BENCH_PARALLELISM:-10}
SETTLE=${BENCH_SETTLE:-2}          # seconds for the engine after a cleanup
QUIET_IDLE=${BENCH_QUIET_IDLE:-80} # % of CPU idle wanted before a cold run starts…
QUIET_WAIT=${BENCH_QUIET_WAIT:-120} # …waiting at most this long for it (others share the host)
STEP_TIMEOUT=${BENCH_TIMEOUT:-600} # no single command may take longer than this
CONTENDERS=${BENCH_CONTENDERS:-"floor floor-health tenantctl compose"}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results.md}

# bash 5 gives microsecond wall time without forking `date`; the fork would be noise at 0.02 s.
if [[ -z ${EPOCHREALTIME:-} ]]; then
  echo "bench/apply.sh needs bash >= 5 (EPOCHREALTIME)" >&2
  exit 1
fi
for tool in docker docker-compose cargo git awk timeout; do
  command -v "$tool" >/dev/null || { echo "bench/apply.sh needs $tool" >&2; exit 1; }
done

ID=b$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tenantctl-bench.XXXXXX")
CREATED=() # "kind name" of everything made, for the trap
# Disjoint /20s of 10.250.0.0/16, away from the engine's default pools and from the pools the
# test suite picks (10.100-139, 10.150-249, 10.213, 10.233): other work may share this engine.
POOL_TENANTCTL=10.250.0.0/20
POOL_COMPOSE=10.250.16.0/20
POOL_FLOOR=10.250.32.0/20
POOL_FLOOR_HEALTH=10.250.48.0/20
POOL_WARMUP=10.250.64.0/20

# Progress goes to the original stderr (fd 3), also from inside a redirected `time` group, where
# the exit trap may run too.
exec 3>&2
log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&3; }

# Removes one tenantctl namespace (or floor namespace: same labels). Parallel xargs because the
# engine answers removals one at a time per request and 50 sequential ones take ~40 s.
remove_namespace() {
  local ns=$1
  docker ps -aq --filter "label=tenantctl.namespace=$ns" | xargs -r -n 5 -P 4 docker rm -f >/dev/null 2>&1 || true
  docker network ls -q --filter "label=tenantctl.namespace=$ns" | xargs -r -n 5 -P 4 docker network rm >/dev/null 2>&1 || true
  docker volume ls -q --filter "label=tenantctl.namespace=$ns" | xargs -r -n 10 -P 2 docker volume rm -f >/dev/null 2>&1 || true
}

remove_project() {
  local project=$1 file=$WORK/$1.compose.yml
  if [[ -f $file ]]; then
    timeout "$STEP_TIMEOUT" docker-compose -p "$project" -f "$file" down -v -t 1 >/dev/null 2>&1 || true
  fi
  # Whatever `down` missed (an interrupted `up`), by compose's own project label.
  docker ps -aq --filter "label=com.docker.compose.project=$project" | xargs -r -n 5 -P 4 docker rm -f >/dev/null 2>&1 || true
  docker network ls -q --filter "label=com.docker.compose.project=$project" | xargs -r docker network rm >/dev/null 2>&1 || true
  docker volume ls -q --filter "label=com.docker.compose.project=$project" | xargs -r docker volume rm -f >/dev/null 2>&1 || true
}

remove() {
  case $1 in
    project) remove_project "$2" ;;
    *) remove_namespace "$2" ;;
  esac
}

on_exit() {
  local status=$?
  trap - EXIT INT TERM
  if ((${#CREATED[@]})); then
    log "cleaning up ${#CREATED[@]} namespaces/projects"
    local entry pass
    # Twice: a create the engine was still finishing when a failed run ended can land after
    # the first pass listed the namespace.
    for pass in 1 2; do
      for entry in "${CREATED[@]}"; do
        # shellcheck disable=SC2086 # "kind name" is meant to split
        remove $entry
      done
      ((pass == 2)) || sleep 2
    done
  fi
  # The pinned image, once nothing tags or uses it (a failed removal is harmless).
  if [[ -n ${IMAGE:-} && -z $(docker image inspect -f '{{join .RepoTags ""}}' "$IMAGE" 2>/dev/null) ]]; then
    docker rmi "$IMAGE" >/dev/null 2>&1 || true
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

# ----------------------------------------------------------------------------- build

log "building tenantctl and examples/raw_floor (release)"
cargo build --release --locked --quiet --bin tenantctl --example raw_floor
TENANTCTL=$ROOT/target/release/tenantctl
FLOOR=$ROOT/target/release/examples/raw_floor
VERSION=$(awk -F'"' '/^version *=/ { print $2; exit }' Cargo.toml)
SITE_TAG=tenantctl-site:$VERSION # builtin_site_image() in src/runtime/spec.rs

# ----------------------------------------------------------------------------- repositories

# A state repository of $2 active tenants spread over the project's three plans and themes.
make_repo() {
  local dir=$1 count=$2 plans=(starter professional enterprise) themes=(modern classic minimal)
  mkdir -p "$dir/tenants"
  cp -r "$ROOT/plans" "$ROOT/themes" "$dir/"
  local i slug
  for ((i = 1; i <= count; i++)); do
    printf -v slug 't%03d' "$i"
    cat >"$dir/tenants/$slug.yaml" <<EOF
kind: Tenant
name: $slug
spec:
  displayName: Bench tenant $i
  owner: ops@$slug.example
  plan: ${plans[i % 3]}
  theme: ${themes[(i / 3) % 3]}
  state: active
EOF
  done
  git -C "$dir" init -q
  git -C "$dir" add -A
  git -C "$dir" -c user.name=bench -c user.email=bench@localhost commit -qm "bench: $count tenants"
  "$TENANTCTL" --repo "$dir" validate >/dev/null
}

REPO=$WORK/repo
WARM_REPO=$WORK/warm
make_repo "$REPO" "$TENANTS"
make_repo "$WARM_REPO" 1

# ----------------------------------------------------------------------------- the site image

# tenantctl rebuilds the site image when its tenantctl.exe-fingerprint label (size-mtime-inode of
# the binary, see src/runtime/change.rs) is not this binary's. Other work on this engine (tests
# of other checkouts) retags tenantctl-site:<version> from its own binary, so check before every
# timed tenantctl run and rebuild outside the timing when needed.
FINGERPRINT=$(stat -c '%s-%.9Y-%i' "$TENANTCTL")
image_fingerprint() {
  docker image inspect -f '{{index .Config.Labels "tenantctl.exe-fingerprint"}}' "$SITE_TAG" 2>/dev/null || true
}
image_id() { docker image inspect -f '{{.Id}}' "$SITE_TAG" 2>/dev/null || true; }

WARMUPS=0
ensure_site_image() {
  [[ $(image_fingerprint) == "$FINGERPRINT" ]] && return 0
  WARMUPS=$((WARMUPS + 1))
  local ns=${ID}w$WARMUPS
  CREATED+=("ns $ns")
  log "building $SITE_TAG from this binary (warm-up apply of 1 tenant in $ns, not timed)"
  timeout "$STEP_TIMEOUT" "$TENANTCTL" --namespace "$ns" --repo "$WARM_REPO" \
    --database-url "sqlite://$WORK/$ns.db" apply --auto-approve --no-color \
    --subnet-pool "$POOL_WARMUP" >"$WORK/$ns.log" 2>&1 || {
    cat "$WORK/$ns.log" >&2
    return 1
  }
  remove_namespace "$ns"
}
ensure_site_image
# compose and the floor run the image by id, so a retag by someone else cannot change what they
# run between a cold run and its no-op rerun (compose would recreate every container). A
# created, never started container pins it: a tenantctl that rebuilds the tag removes the image
# it replaced unless a container uses it (src/runtime/image.rs).
IMAGE=$(image_id)
CREATED+=("ns ${ID}pin")
docker create --name "${ID}-pin" --label "tenantctl.namespace=${ID}pin" "$IMAGE" >/dev/null
log "site image $SITE_TAG = ${IMAGE:7:12}"

# ----------------------------------------------------------------------------- timing

# CPU-seconds the whole machine spent busy so far (all CPUs; /proc/stat counts in USER_HZ).
machine_cpu() { awk -v hz="$HZ" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8) / hz }' /proc/stat; }
# CPU-seconds of the engine daemon so far, when it runs on this host and we may read it.
DOCKERD_PID=$(pidof dockerd 2>/dev/null | awk '{ print $1 }' || true)
dockerd_cpu() {
  if [[ -n $DOCKERD_PID && -r /proc/$DOCKERD_PID/stat ]]; then
    # utime stime cutime cstime: its own and its reaped children's (iptables, docker-proxy…)
    awk -v hz="$HZ" '{ printf "%.2f", ($14 + $15 + $16 + $17) / hz }' "/proc/$DOCKERD_PID/stat"
  else
    echo ""
  fi
}
HZ=$(getconf CLK_TCK)

# Runs "$@" under a timeout with output to $LOG. Sets ELAPSED (seconds, whole process),
# OWN_CPU (user+sys of the command and its children), MACHINE_CPU and DOCKERD_CPU (busy
# CPU-seconds of the whole machine and of dockerd meanwhile).
ELAPSED= OWN_CPU= MACHINE_CPU= DOCKERD_CPU=
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

# contender kind seconds: one sample. A cold one also keeps how idle the machine was just
# before, and the CPU-seconds spent meanwhile by the contender itself, by dockerd and by all.
record() {
  if [[ $2 == cold ]]; then
    echo "$3 $IDLE_BEFORE $OWN_CPU $DOCKERD_CPU $MACHINE_CPU" >>"$WORK/samples.$1.$2"
  else
    echo "$3" >>"$WORK/samples.$1.$2"
  fi
}

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

# This host is shared (other checkouts compile and run tests on it): before a cold run, wait
# until the CPUs are mostly idle, at most QUIET_WAIT seconds, and keep how idle they were.
IDLE_BEFORE=
BUSY_STARTS=0
wait_quiet() {
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

running_in() { # label filter → number of running containers
  docker ps -q --filter "label=$1" | wc -l
}

expect_running() {
  local n
  n=$(running_in "$1")
  if ((n != TENANTS)); then
    log "expected $TENANTS running containers with $1, found $n"
    return 1
  fi
}

settle() {
  sleep "$SETTLE"
  wait_quiet
}

run_floor() { # run health?
  local run=$1 health=$2 ns pool name
  if [[ $health == yes ]]; then
    ns=${ID}h$run pool=$POOL_FLOOR_HEALTH name=floor-health
  else
    ns=${ID}f$run pool=$POOL_FLOOR name=floor
  fi
  CREATED+=("ns $ns")
  LOG=$WORK/$ns.cold.log
  local args=(up --repo "$REPO" --namespace "$ns" --image "$IMAGE" --subnet-pool "$pool"
    --parallelism "$PARALLELISM")
  [[ $health == yes ]] && args+=(--health)
  timed "$FLOOR" "${args[@]}"
  record "$name" cold "$ELAPSED"
  expect_running "tenantctl.namespace=$ns"
  log "$name run $run: cold ${ELAPSED}s ($(grep -o '[0-9.]*s in-process' "$LOG"))"
  if ((run == RUNS)); then
    grep -A6 '^raw floor:' "$LOG" >>"$WORK/floor-steps"
  fi
  if [[ $health == no ]]; then
    # The least a no-op needs: one list of the namespace's containers (whole process).
    LOG=$WORK/$ns.noop.log
    "$FLOOR" list --namespace "$ns" --expect "$TENANTS" >/dev/null # untimed: warms the page cache
    local i
    for ((i = 1; i <= NOOP_RUNS; i++)); do
      timed "$FLOOR" list --namespace "$ns" --expect "$TENANTS"
      record "$name" noop "$ELAPSED"
    done
  fi
  remove_namespace "$ns"
}

run_tenantctl() {
  local run=$1 attempt ns before after
  # A run during which someone retagged the site image may include a rebuild: discard it and
  # run again (at most 3 times), so the figure is tenantctl's own work.
  for attempt in 1 2 3; do
    ensure_site_image
    ns=${ID}t$run$([[ $attempt == 1 ]] || echo "r$attempt")
    CREATED+=("ns $ns")
    local cmd=("$TENANTCTL" --namespace "$ns" --repo "$REPO" --database-url "sqlite://$WORK/$ns.db")
    LOG=$WORK/$ns.cold.log
    before=$(image_id)
    timed "${cmd[@]}" apply --auto-approve --no-color --parallelism "$PARALLELISM" \
      --subnet-pool "$POOL_TENANTCTL"
    after=$(image_id)
    if [[ $before != "$after" || $(image_fingerprint) != "$FINGERPRINT" ]]; then
      log "tenantctl run $run: the site image changed during the run; discarding it"
      remove_namespace "$ns"
      settle
      continue
    fi
    record tenantctl cold "$ELAPSED"
    expect_running "tenantctl.namespace=$ns"
    log "tenantctl run $run: cold ${ELAPSED}s"
    LOG=$WORK/$ns.noop.log
    "${cmd[@]}" apply --auto-approve --no-color >/dev/null # untimed: warms the page cache
    local i
    for ((i = 1; i <= NOOP_RUNS; i++)); do
      timed "${cmd[@]}" apply --auto-approve --no-color
      grep -q '^No changes\.' "$LOG" || { log "tenantctl no-op rerun was not a no-op:"; cat "$LOG" >&2; return 1; }
      record tenantctl noop "$ELAPSED"
    done
    remove_namespace "$ns"
    return 0
  done
  log "tenantctl: the site image kept changing under the benchmark; giving up"
  return 1
}

run_compose() {
  local run=$1 project=${ID}c$run
  CREATED+=("project $project")
  local file=$WORK/$project.compose.yml
  "$FLOOR" compose --repo "$REPO" --project "$project" --image "$IMAGE" \
    --subnet-pool "$POOL_COMPOSE" >"$file"
  # COMPOSE_PARALLEL_LIMIT is left at compose's default (64, so all 50 at once): compose 1.x
  # deadlocks with a limit below the number of services (docker/compose#5864), which is what
  # happened here with 10.
  LOG=$WORK/$project.cold.log
  timed env -u COMPOSE_PARALLEL_LIMIT docker-compose -p "$project" -f "$file" up -d
  record compose cold "$ELAPSED"
  expect_running "com.docker.compose.project=$project"
  log "compose run $run: cold ${ELAPSED}s"
  LOG=$WORK/$project.noop.log
  docker-compose -p "$project" -f "$file" up -d >/dev/null 2>&1 # untimed: warms the page cache
  local i
  for ((i = 1; i <= NOOP_RUNS; i++)); do
    timed env -u COMPOSE_PARALLEL_LIMIT docker-compose -p "$project" -f "$file" up -d
    if grep -q -e Creating -e Recreating "$LOG"; then
      log "compose no-op rerun changed containers:"
      cat "$LOG" >&2
      return 1
    fi
    record compose noop "$ELAPSED"
  done
  remove_project "$project"
}

# ----------------------------------------------------------------------------- the runs

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
FOREIGN_BEFORE=$(docker ps -q | wc -l)
log "$TENANTS tenants, $RUNS cold runs per contender (interleaved), $NOOP_RUNS no-op reruns after each"
for ((run = 1; run <= RUNS; run++)); do
  for contender in $CONTENDERS; do
    settle
    case $contender in
      floor) run_floor "$run" no ;;
      floor-health) run_floor "$run" yes ;;
      tenantctl) run_tenantctl "$run" ;;
      compose) run_compose "$run" ;;
      *) log "unknown contender $contender"; exit 2 ;;
    esac
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ----------------------------------------------------------------------------- the table

stat_of() { # contender kind median|min [column] → seconds or empty
  local file=$WORK/samples.$1.$2 column=${4:-1}
  [[ -f $file ]] || return 0
  sort -g -k"$column,$column" "$file" | awk -v what="$3" -v col="$column" '
    { v[NR] = $col }
    END {
      # the median; with an even count, the mean of the middle two
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      if (what == "min") m = v[1]
      printf (m < 1 ? "%.3f" : "%.2f"), m
    }'
}
ratio() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || echo "—"; }
or_dash() { [[ -n $1 ]] && echo "$1" || echo "—"; }

FLOOR_MED=$(stat_of floor cold median)
FLOORH_MED=$(stat_of floor-health cold median)
declare -A LABEL=(
  [tenantctl]="tenantctl apply (waits for /health)"
  [compose]="docker-compose up -d (no wait)"
  [floor]="raw Engine API (floor; no-op = list)"
  [floor-health]="raw Engine API + /health wait"
)
table() {
  echo "| contender | cold median (s) | cold min (s) | no-op median (s) | no-op min (s) | cold ÷ floor | cold ÷ floor+health |"
  echo "|---|---|---|---|---|---|---|"
  local c med
  for c in tenantctl compose floor floor-health; do
    [[ -f $WORK/samples.$c.cold ]] || continue
    med=$(stat_of "$c" cold median)
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "${LABEL[$c]}" "$med" \
      "$(stat_of "$c" cold min)" "$(or_dash "$(stat_of "$c" noop median)")" \
      "$(or_dash "$(stat_of "$c" noop min)")" "$(ratio "$med" "$FLOOR_MED")" \
      "$(ratio "$med" "$FLOORH_MED")"
  done
}

ENGINE=$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')
COMPOSE_VERSION=$(docker-compose version --short 2>/dev/null || echo unknown)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
  echo "# bench/apply.sh results"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'); tenantctl $VERSION at $COMMIT; Docker engine $ENGINE;"
  echo "docker-compose $COMPOSE_VERSION; $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo);"
  echo "$TENANTS tenants, parallelism $PARALLELISM (compose: its default, 64), $RUNS cold runs each"
  echo "(interleaved), $((RUNS * NOOP_RUNS)) no-op reruns each; whole-process wall time."
  echo "Load average before/after: $LOAD_BEFORE / $LOAD_AFTER; containers already running on"
  echo "the engine when it started: $FOREIGN_BEFORE; cold runs started on a busy machine (under"
  echo "$QUIET_IDLE% idle after waiting ${QUIET_WAIT}s): $BUSY_STARTS."
  echo
  table
  echo
  echo "Targets: cold tenantctl ≤ 1.15 × floor; no-op tenantctl ≤ 0.1 s."
  echo
  echo "Where the CPU went during a cold run (medians, CPU-seconds; $(nproc) cores × the wall time is"
  echo "what there was). \"dockerd\" includes the processes it ran and reaped (iptables, …); the"
  echo "rest is containerd, its shims and runc, the tenants' own processes and the kernel."
  echo
  echo "| contender | wall | the contender itself | dockerd | whole machine |"
  echo "|---|---|---|---|---|"
  for c in tenantctl compose floor floor-health; do
    [[ -f $WORK/samples.$c.cold ]] || continue
    printf '| %s | %s | %s | %s | %s |\n' "$c" "$(stat_of "$c" cold median)" \
      "$(stat_of "$c" cold median 3)" "$(stat_of "$c" cold median 4)" "$(stat_of "$c" cold median 5)"
  done
  echo
  echo "Cold samples in run order: seconds (% CPU idle in the second before):"
  echo
  for c in tenantctl compose floor floor-health; do
    [[ -f $WORK/samples.$c.cold ]] || continue
    printf -- '- %s: %s\n' "$c" "$(awk '{ printf "%s%s (%s%%)", (NR > 1 ? ", " : ""), $1, $2 }' "$WORK/samples.$c.cold")"
  done
  echo
  echo "Per-step times of the last floor runs (in-process, as raw_floor reports them):"
  echo
  echo '```'
  cat "$WORK/floor-steps" 2>/dev/null || true
  echo '```'
} >"$WORK/results.md"
cp "$WORK/results.md" "$RESULTS"
echo
cat "$RESULTS"
