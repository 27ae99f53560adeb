#!/usr/bin/env bash
# tenantctl at hundreds of tenants, in one run on this machine, at each size N:
#   floor      examples/raw_floor: one /28 network, one volume, one container (created and
#              started) per tenant through the Engine API, at the same parallelism; no reads,
#              no database, no health wait
#   tenantctl  `tenantctl apply --auto-approve` cold (waits until every site answers), then the
#              no-op rerun
#   compose    the same containers as `docker-compose up -d` services, cold and no-op
#   meter      `tenantctl meter`: one metering pass over the N tenants, timed whole
#   watch      `tenantctl watch` once its first pass is done and no container is still before
#              its first health check: its CPU while idle (and dockerd's) over
#              BENCH_IDLE_SECONDS, the passes it made meanwhile, and the mean time of a no-op
#              pass (SIGHUP passes, from its /metrics histogram)
# with the CPU-seconds of tenantctl (the process and its children, from its rusage) and of
# dockerd (/proc/<pid>/stat, its reaped children included) for each cold run. Results: a
# Markdown table on stdout and at the top of bench/scale-results.md (earlier runs kept below).
#
#   bash bench/scale.sh                  # N = 50 and 200
#   bash bench/scale.sh --1000           # N = 50, 200 and 1000
#   bash bench/scale.sh --tiny           # every theme runs a tiny image (below) instead of the
#                                        # built-in site: what 1,000 tenants fit on this host
#   BENCH_TIMEOUT=7200 BENCH_SIZES=1000 bash bench/scale.sh --tiny
#                                        # 1,000 on 2 cores: a cold apply takes over 30 minutes
#   BENCH_SIZES="200" BENCH_RUNS=2 bash bench/scale.sh
#   TENANTCTL_BIN=/path/to/tenantctl bash bench/scale.sh   # another build
#   BEFORE_BIN=/path/to/old/tenantctl BENCH_CONTENDERS="floor before tenantctl" bash bench/scale.sh
#                                        # an older build's cold and no-op apply beside this one's
#
# Every object it makes lives in namespaces/projects named s<pid>…, removed on exit (trap).
# BENCH_KEEP=1 keeps the work directory (logs, repositories, databases); BENCH_KEEP_TENANTS=1
# also leaves tenantctl's last namespace of each N running, to profile against (the script says
# its name, database and the command that removes it).
set -euo pipefail
export LC_ALL=C
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
source "$ROOT/bench/lib.sh"

SIZES=${BENCH_SIZES:-"50 200"}
TINY=${BENCH_TINY:-}
# --tiny: Debian's static busybox as `httpd` (~2 MiB a container where the built-in site takes
# ~27 MiB), built here FROM scratch; the themes get `image:` and a health interval of
# BENCH_TINY_INTERVAL seconds (default 300: at 60, ~800 containers' checks alone kept ~58 % of
# 2 cores busy and timed out under that load; tenantctl's apply waits by HTTP, not by them).
TINY_TAG=tenantctl-bench-tiny:1
TINY_INTERVAL=${BENCH_TINY_INTERVAL:-300}
for arg in "$@"; do
  case $arg in
    --1000) SIZES="$SIZES 1000" ;;
    --tiny) TINY=1 ;;
    *) echo "usage: bash bench/scale.sh [--1000] [--tiny]" >&2; exit 64 ;;
  esac
done
RUNS=${BENCH_RUNS:-2}
NOOP_RUNS=${BENCH_NOOP_RUNS:-3}
PARALLELISM=${BENCH_PARALLELISM:-10}
IDLE_SECONDS=${BENCH_IDLE_SECONDS:-60}
SIGHUP_PASSES=${BENCH_PASSES:-10}
CONTENDERS=${BENCH_CONTENDERS:-"floor tenantctl compose"}
STEP_TIMEOUT=${BENCH_TIMEOUT:-1800}
# docker-compose 1.29 brings up ~9 services a minute at 200 (measured): a cold run is cut here
# and reported as how many services were up by then.
COMPOSE_TIMEOUT=${BENCH_COMPOSE_TIMEOUT:-600}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/scale-results.md}
# Away from the pools the tests and bench/apply.sh use; a /18 holds 1024 /28s.
POOL_TENANTCTL=10.251.0.0/18
POOL_FLOOR=10.251.64.0/18
POOL_COMPOSE=10.251.128.0/18
POOL_WARMUP=10.251.192.0/24

[[ -n ${EPOCHREALTIME:-} ]] || { echo "bench/scale.sh needs bash >= 5" >&2; exit 1; }
for tool in docker docker-compose cargo git awk timeout curl; do
  command -v "$tool" >/dev/null || { echo "bench/scale.sh needs $tool" >&2; exit 1; }
done

ID=s$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tenantctl-scale.XXXXXX")
CREATED=()
KEPT=()
WATCH_PID=
exec 3>&2
log() { printf '[scale %(%H:%M:%S)T] %s\n' -1 "$*" >&3; }

remove_project() {
  local project=$1 file=$WORK/$1.compose.yml
  [[ -f $file ]] && timeout "$STEP_TIMEOUT" docker-compose -p "$project" -f "$file" down -v -t 1 >/dev/null 2>&1 || true
  docker ps -aq --filter "label=com.docker.compose.project=$project" | xargs -r docker rm -f -v >/dev/null 2>&1 || true
  docker network ls -q --filter "label=com.docker.compose.project=$project" | xargs -r docker network rm >/dev/null 2>&1 || true
  docker volume ls -q --filter "label=com.docker.compose.project=$project" | xargs -r docker volume rm -f >/dev/null 2>&1 || true
}

stop_watch() {
  if [[ -n $WATCH_PID ]]; then
    kill "$WATCH_PID" 2>/dev/null && wait "$WATCH_PID" 2>/dev/null || true
    WATCH_PID=
  fi
}

on_exit() {
  local status=$?
  trap - EXIT INT TERM
  stop_watch
  local entry
  for entry in "${CREATED[@]}"; do
    case $entry in
      project\ *) remove_project "${entry#project }" ;;
      *) [[ " ${KEPT[*]} " == *" ${entry#ns } "* ]] || remove_namespace "${entry#ns }" 2>/dev/null || true ;;
    esac
  done
  if [[ -n ${IMAGE_PIN:-} ]]; then docker rm -f "$IMAGE_PIN" "$IMAGE_PIN-tiny" >/dev/null 2>&1 || true; fi
  if [[ -n ${BENCH_KEEP:-} || ${#KEPT[@]} -gt 0 ]]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ----------------------------------------------------------------------------- build

if [[ -n ${TENANTCTL_BIN:-} ]]; then
  TENANTCTL=$(realpath "$TENANTCTL_BIN")
  FLOOR=${FLOOR_BIN:-$ROOT/target/release/examples/raw_floor}
  [[ -x $FLOOR ]] || cargo build --release --locked --quiet --example raw_floor
else
  log "building tenantctl and examples/raw_floor (release)"
  cargo build --release --locked --quiet --bin tenantctl --example raw_floor
  TENANTCTL=$ROOT/target/release/tenantctl
  FLOOR=$ROOT/target/release/examples/raw_floor
fi
VERSION=$(awk -F'"' '/^version *=/ { print $2; exit }' Cargo.toml)
SITE_TAG=tenantctl-site:$VERSION

# ----------------------------------------------------------------------------- measuring

HZ=$(getconf CLK_TCK)
DOCKERD_PID=$(pidof dockerd 2>/dev/null | awk '{ print $1 }' || true)
# CPU-seconds of a process so far: utime stime cutime cstime (its reaped children included).
proc_cpu() { [[ -r /proc/$1/stat ]] && awk -v hz="$HZ" '{ printf "%.2f", ($14 + $15 + $16 + $17) / hz }' "/proc/$1/stat" || echo ""; }
dockerd_cpu() { [[ -n $DOCKERD_PID ]] && proc_cpu "$DOCKERD_PID" || echo ""; }
sub() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }' || echo "-"; }
idle_pct() {
  local -a a b
  read -r -a a </proc/stat
  sleep "$1"
  read -r -a b </proc/stat
  awk -v a="${a[*]:1:8}" -v b="${b[*]:1:8}" 'BEGIN {
    split(a, x); split(b, y)
    for (i = 1; i <= 8; i++) { d = y[i] - x[i]; t += d; if (i == 4 || i == 5) idle += d }
    printf "%d", t ? 100 * idle / t : 100 }'
}

# timed CMD...: runs it with output to $LOG; sets ELAPSED (s), OWN_CPU (user+sys of the command
# and its children) and DOCKERD_CPU (dockerd's CPU-seconds meanwhile).
ELAPSED= OWN_CPU= DOCKERD_CPU=
timed() {
  local start end d0 d1 TIMEFORMAT='%U %S'
  d0=$(dockerd_cpu)
  start=$EPOCHREALTIME
  if ! { time timeout "$STEP_TIMEOUT" "$@" >"$LOG" 2>&1; } 2>"$WORK/rusage"; then
    log "FAILED ($*); last lines of $LOG:"
    tail -n 20 "$LOG" >&2
    return 1
  fi
  end=$EPOCHREALTIME
  d1=$(dockerd_cpu)
  ELAPSED=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
  OWN_CPU=$(awk '{ printf "%.2f", $1 + $2 }' "$WORK/rusage")
  DOCKERD_CPU=$(sub "$d0" "$d1")
}

# sample N WHAT VALUE...: one line per sample in $WORK/samples.N.WHAT
sample() { local n=$1 what=$2; shift 2; echo "$*" >>"$WORK/samples.$n.$what"; }
median() { # N WHAT [column] → the median of that column, or "—"
  local file=$WORK/samples.$1.$2 col=${3:-1}
  [[ -s $file ]] || { echo "—"; return; }
  sort -g -k"$col,$col" "$file" | awk -v c="$col" '{ v[NR] = $c } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf (m < 1 ? "%.3f" : "%.2f"), m }'
}
values() { # N WHAT [column] → every sample, comma-separated
  local file=$WORK/samples.$1.$2 col=${3:-1}
  [[ -s $file ]] && awk -v c="$col" '{ printf "%s%s", (NR > 1 ? ", " : ""), $c }' "$file" || echo "—"
}

# ----------------------------------------------------------------------------- repositories

make_repo() { # DIR N
  mkdir -p "$1"
  tenants_repo "$ROOT" "$1" "$2" >/dev/null
  if [[ -n $TINY ]]; then
    local theme
    for theme in "$1"/themes/*.yaml; do
      sed -i -e '/^  # image:/d' -e "/^  version:/a\\  image: $TINY_TAG" \
        -e "s|intervalSeconds: [0-9]*|intervalSeconds: $TINY_INTERVAL|" -e 's|^  port: .*|  port: 8080|' "$theme"
      grep -q "image: $TINY_TAG" "$theme" || { echo "$theme: no image line to set" >&2; exit 1; }
    done
    commit_all "$1" "tiny image"
  fi
  "$TENANTCTL" --repo "$1" validate >/dev/null
}

# tenantctl rebuilds the site image when its tenantctl.exe-fingerprint label is not this
# binary's; other checkouts on this engine retag it from theirs. Built here, outside any timing
# (a 1-tenant apply), before every timed tenantctl run that would otherwise rebuild it.
WARMUPS=0
ensure_site_image() { # [BINARY]
  local bin=${1:-$TENANTCTL}
  [[ $(docker image inspect -f '{{index .Config.Labels "tenantctl.exe-fingerprint"}}' "$SITE_TAG" 2>/dev/null) == "$(stat -c '%s-%.9Y-%i' "$bin")" ]] && return 0
  WARMUPS=$((WARMUPS + 1))
  local ns=${ID}w$WARMUPS
  CREATED+=("ns $ns")
  # The built-in site's theme (even with --tiny): this apply is what builds the site image.
  [[ -d $WORK/warm ]] || TINY='' make_repo "$WORK/warm" 1
  "$bin" --namespace "$ns" --repo "$WORK/warm" --database-url "sqlite://$WORK/$ns.db" \
    apply --auto-approve --color never --subnet-pool "$POOL_WARMUP" >"$WORK/warm.log" 2>&1 ||
    { cat "$WORK/warm.log" >&2; exit 1; }
  remove_namespace "$ns"
}
image_id() { docker image inspect -f '{{.Id}}' "$SITE_TAG" 2>/dev/null || true; }
build_tiny() {
  command -v busybox >/dev/null && [[ $(ldd "$(command -v busybox)" 2>&1) == *"not a dynamic"* ]] ||
    { echo "bench/scale.sh --tiny needs a static busybox (apt-get install busybox-static)" >&2; exit 1; }
  local dir=$WORK/tiny
  mkdir -p "$dir/www"
  cp "$(command -v busybox)" "$dir/busybox"
  echo ok >"$dir/www/health"
  cat >"$dir/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
EXPOSE 8080
CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
DOCKERFILE
  docker build -q -t "$TINY_TAG" "$dir" >/dev/null 2>"$WORK/tiny.build.log" ||
    { cat "$WORK/tiny.build.log" >&2; exit 1; }
}
warm_up() {
  ensure_site_image
  IMAGE=$(image_id)
  # A created, never started container pins the image for the floor and compose.
  IMAGE_PIN=${ID}-pin
  docker create --name "$IMAGE_PIN" "$IMAGE" >/dev/null
  if [[ -n $TINY ]]; then
    build_tiny
    docker create --name "$IMAGE_PIN-tiny" "$TINY_TAG" >/dev/null
  fi
}

running_in() { docker ps -q --filter "label=$1" | wc -l; }

# ----------------------------------------------------------------------------- contenders

run_floor() { # N RUN
  local n=$1 run=$2 ns=${ID}f$1r$2
  CREATED+=("ns $ns")
  LOG=$WORK/$ns.log
  timed "$FLOOR" up --repo "$WORK/repo$n" --namespace "$ns" --image "$IMAGE" \
    --subnet-pool "$POOL_FLOOR" --parallelism "$PARALLELISM"
  [[ $(running_in "tenantctl.namespace=$ns") == "$n" ]] || { log "floor: not $n running"; return 1; }
  sample "$n" floor "$ELAPSED $OWN_CPU $DOCKERD_CPU"
  log "N=$n floor run $run: ${ELAPSED}s (floor ${OWN_CPU} CPU-s, dockerd ${DOCKERD_CPU} CPU-s)"
  remove_namespace "$ns"
}

run_compose() { # N RUN
  local n=$1 run=$2 project=${ID}c$1r$2 i
  CREATED+=("project $project")
  local file=$WORK/$project.compose.yml
  "$FLOOR" compose --repo "$WORK/repo$n" --project "$project" --image "$IMAGE" \
    --subnet-pool "$POOL_COMPOSE" >"$file"
  LOG=$WORK/$project.log
  if ! STEP_TIMEOUT=$COMPOSE_TIMEOUT timed env -u COMPOSE_PARALLEL_LIMIT \
    docker-compose -p "$project" -f "$file" up -d; then
    local up
    up=$(running_in "com.docker.compose.project=$project")
    sample "$n" compose-cut "$COMPOSE_TIMEOUT $up"
    log "N=$n compose run $run: cut after ${COMPOSE_TIMEOUT}s with $up of $n services running"
    remove_project "$project"
    return 0
  fi
  sample "$n" compose "$ELAPSED $OWN_CPU $DOCKERD_CPU"
  log "N=$n compose run $run: ${ELAPSED}s"
  for ((i = 1; i <= NOOP_RUNS; i++)); do
    timed env -u COMPOSE_PARALLEL_LIMIT docker-compose -p "$project" -f "$file" up -d
    sample "$n" compose-noop "$ELAPSED"
  done
  remove_project "$project"
}

# The metrics endpoint's value of a series (first match), or 0.
metric() { curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null | awk -v m="$2" '$1 == m { print $2; exit }' || echo 0; }

# An older build's cold and no-op apply (BEFORE_BIN), interleaved with this one's.
run_before() { # N RUN
  local n=$1 run=$2 ns=${ID}b$1r$2 i
  CREATED+=("ns $ns")
  ensure_site_image "$BEFORE_BIN"
  local cmd=("$BEFORE_BIN" --namespace "$ns" --repo "$WORK/repo$n" --database-url "sqlite://$WORK/$ns.db")
  LOG=$WORK/$ns.cold.log
  timed "${cmd[@]}" apply --auto-approve --color never --parallelism "$PARALLELISM" \
    --subnet-pool "$POOL_TENANTCTL"
  [[ $(running_in "tenantctl.namespace=$ns") == "$n" ]] || { log "before: not $n running"; return 1; }
  sample "$n" before "$ELAPSED $OWN_CPU $DOCKERD_CPU"
  log "N=$n before run $run: cold ${ELAPSED}s (tenantctl ${OWN_CPU} CPU-s, dockerd ${DOCKERD_CPU} CPU-s)"
  LOG=$WORK/$ns.noop.log
  for ((i = 1; i <= NOOP_RUNS; i++)); do
    timed "${cmd[@]}" apply --auto-approve --color never
    sample "$n" before-noop "$ELAPSED"
  done
  remove_namespace "$ns"
}

run_tenantctl() { # N RUN
  local n=$1 run=$2 ns i attempt before cmd
  # A run during which someone retagged the site image may include a rebuild: run it again.
  for attempt in 1 2 3; do
    ensure_site_image
    ns=${ID}t$1r$2a$attempt
    CREATED+=("ns $ns")
    cmd=("$TENANTCTL" --namespace "$ns" --repo "$WORK/repo$n" --database-url "sqlite://$WORK/$ns.db")
    LOG=$WORK/$ns.cold.log
    before=$(image_id)
    timed "${cmd[@]}" apply --auto-approve --color never --parallelism "$PARALLELISM" \
      --subnet-pool "$POOL_TENANTCTL"
    [[ $(image_id) == "$before" ]] && break
    log "N=$n tenantctl run $run: the site image changed during the run; running it again"
    remove_namespace "$ns"
  done
  [[ $(running_in "tenantctl.namespace=$ns") == "$n" ]] || { log "tenantctl: not $n running"; return 1; }
  sample "$n" tenantctl "$ELAPSED $OWN_CPU $DOCKERD_CPU"
  log "N=$n tenantctl run $run: cold ${ELAPSED}s (tenantctl ${OWN_CPU} CPU-s, dockerd ${DOCKERD_CPU} CPU-s)"
  LOG=$WORK/$ns.noop.log
  for ((i = 1; i <= NOOP_RUNS; i++)); do
    timed "${cmd[@]}" apply --auto-approve --color never
    grep -q '^No changes\.' "$LOG" || { log "the no-op apply was not a no-op"; cat "$LOG" >&2; return 1; }
    sample "$n" tenantctl-noop "$ELAPSED"
  done
  # One metering pass (engine stats, site counters, volume sizes), the whole command timed.
  LOG=$WORK/$ns.meter.log
  timed "${cmd[@]}" meter
  sample "$n" meter "$ELAPSED $OWN_CPU $DOCKERD_CPU"
  log "N=$n meter: ${ELAPSED}s"

  # The loop, idle: metering and the log history off, so what is left is the loop's own.
  local port=$((20000 + RANDOM % 20000)) d0 d1 w0 w1 c0 s0 c1 s1
  "${cmd[@]}" watch --metrics-addr "127.0.0.1:$port" --meter-interval 0 --log-sync-interval 0 \
    --color never >"$WORK/$ns.watch.log" 2>&1 &
  WATCH_PID=$!
  local deadline=$((SECONDS + 600))
  until [[ $(metric "$port" tenantctl_reconcile_passes_total) -ge 1 ]]; do
    ((SECONDS < deadline)) && kill -0 "$WATCH_PID" 2>/dev/null || { log "watch did not pass"; cat "$WORK/$ns.watch.log" >&2; return 1; }
    sleep 0.5
  done
  # Idle means nothing changing. Before API 1.44 the engine runs a container's first health
  # check a whole interval after it started, and the change from starting to healthy is an
  # event watch makes a pass of: wait until no container of the namespace is still starting.
  local waited=$SECONDS settle=$((SECONDS + ${BENCH_SETTLE_TIMEOUT:-900})) starting
  while starting=$(docker ps -q --filter "label=tenantctl.namespace=$ns" --filter health=starting | wc -l) &&
    ((starting > 0)); do
    ((SECONDS < settle)) || { log "N=$n: $starting containers still before their first health check; measuring anyway"; break; }
    sleep 5
  done
  log "N=$n: every first health check done after $((SECONDS - waited))s more"
  sleep 5 # the start pass's own events settle
  local p0 p1
  p0=$(metric "$port" tenantctl_reconcile_passes_total)
  d0=$(dockerd_cpu) w0=$(proc_cpu "$WATCH_PID")
  sleep "$IDLE_SECONDS"
  d1=$(dockerd_cpu) w1=$(proc_cpu "$WATCH_PID")
  p1=$(metric "$port" tenantctl_reconcile_passes_total)
  local watch_pct dockerd_pct
  watch_pct=$(awk -v a="$w0" -v b="$w1" -v s="$IDLE_SECONDS" 'BEGIN { printf "%.2f", 100 * (b - a) / s }')
  dockerd_pct=$(awk -v a="$d0" -v b="$d1" -v s="$IDLE_SECONDS" 'BEGIN { printf "%.2f", 100 * (b - a) / s }')
  # No-op passes on demand (SIGHUP), one after the other; their mean from the histogram.
  c0=$(metric "$port" tenantctl_reconcile_duration_seconds_count)
  s0=$(metric "$port" tenantctl_reconcile_duration_seconds_sum)
  for ((i = 1; i <= SIGHUP_PASSES; i++)); do
    kill -HUP "$WATCH_PID"
    local want=$((c0 + i)) until=$((SECONDS + 60))
    until [[ $(metric "$port" tenantctl_reconcile_duration_seconds_count) -ge $want ]]; do
      ((SECONDS < until)) || { log "SIGHUP pass $i did not end"; return 1; }
      sleep 0.05
    done
  done
  c1=$(metric "$port" tenantctl_reconcile_duration_seconds_count)
  s1=$(metric "$port" tenantctl_reconcile_duration_seconds_sum)
  local pass_ms
  pass_ms=$(awk -v a="$s0" -v b="$s1" -v c="$c0" -v d="$c1" 'BEGIN { printf "%.1f", (d > c) ? 1000 * (b - a) / (d - c) : 0 }')
  local listings
  listings=$(metric "$port" tenantctl_observe_full_listings_total)
  sample "$n" watch "$watch_pct $dockerd_pct $pass_ms ${listings:-?}"
  log "N=$n watch idle: ${watch_pct}% of a core (dockerd ${dockerd_pct}%) with $((p1 - p0)) passes in ${IDLE_SECONDS}s, no-op pass ${pass_ms} ms"
  stop_watch
  if [[ -n ${BENCH_KEEP_TENANTS:-} ]]; then
    KEPT+=("$ns")
    log "N=$n: namespace $ns kept running: ${cmd[*]} ...; remove it with: bash -c '. bench/lib.sh; remove_namespace $ns'"
  else
    remove_namespace "$ns"
  fi
}

# ----------------------------------------------------------------------------- the runs

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
IDLE_BEFORE=$(idle_pct 2)
warm_up
for n in $SIZES; do
  make_repo "$WORK/repo$n" "$n"
  for ((run = 1; run <= RUNS; run++)); do
    for contender in $CONTENDERS; do
      sleep 2
      case $contender in
        floor) run_floor "$n" "$run" ;;
        tenantctl) run_tenantctl "$n" "$run" ;;
        compose) run_compose "$n" "$run" ;;
        before) run_before "$n" "$run" ;;
        *) log "unknown contender $contender"; exit 64 ;;
      esac
    done
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

ratio() { [[ $1 != "—" && $2 != "—" ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }' || echo "—"; }
ENGINE=$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
  echo "# bench/scale.sh results"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'); tenantctl $VERSION at $COMMIT; Docker engine $ENGINE;"
  echo "$(nproc) cores; parallelism $PARALLELISM; $RUNS cold runs per size and contender (interleaved),"
  echo "$NOOP_RUNS no-op reruns after each; idle watch over ${IDLE_SECONDS}s, $SIGHUP_PASSES no-op passes."
  echo "Load average before/after: $LOAD_BEFORE / $LOAD_AFTER; CPU idle before: $IDLE_BEFORE%."
  [[ -z $TINY ]] || echo "Themes: \`--tiny\` ($TINY_TAG, static busybox httpd, health every $TINY_INTERVAL s)."
  echo
  echo "| N | floor cold (s) | tenantctl cold (s) | ÷ floor | compose cold (s) | tenantctl no-op (s) | compose no-op (s) | meter (s) | watch idle (% core) | dockerd while watch idles (% core) | watch no-op pass (ms) |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for n in $SIZES; do
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$n" \
      "$(median "$n" floor)" "$(median "$n" tenantctl)" \
      "$(ratio "$(median "$n" tenantctl)" "$(median "$n" floor)")" \
      "$(median "$n" compose)" "$(median "$n" tenantctl-noop)" "$(median "$n" compose-noop)" \
      "$(median "$n" meter)" "$(median "$n" watch 1)" "$(median "$n" watch 2)" "$(median "$n" watch 3)"
  done
  echo
  if [[ -n ${BEFORE_BIN:-} ]]; then
    echo "An older build (\`$BEFORE_BIN\`) beside it, same runs interleaved:"
    echo
    echo "| N | floor cold (s) | older build cold (s) | ÷ floor | this build cold (s) | ÷ floor | older no-op (s) | this no-op (s) |"
    echo "|---|---|---|---|---|---|---|---|"
    for n in $SIZES; do
      printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$(median "$n" floor)" \
        "$(median "$n" before)" "$(ratio "$(median "$n" before)" "$(median "$n" floor)")" \
        "$(median "$n" tenantctl)" "$(ratio "$(median "$n" tenantctl)" "$(median "$n" floor)")" \
        "$(median "$n" before-noop)" "$(median "$n" tenantctl-noop)"
    done
    echo
  fi
  for n in $SIZES; do
    [[ -s $WORK/samples.$n.compose-cut ]] || continue
    awk -v n="$n" '{ printf "docker-compose at N=%s: cut after %s s with %s of %s services running.\n", n, $1, $2, n }' \
      "$WORK/samples.$n.compose-cut"
    echo
  done
  echo "CPU-seconds during a cold run (medians): the contender itself / dockerd."
  echo
  echo "| N | floor | tenantctl | compose | older build |"
  echo "|---|---|---|---|---|"
  for n in $SIZES; do
    printf '| %s | %s / %s | %s / %s | %s / %s | %s / %s |\n' "$n" \
      "$(median "$n" floor 2)" "$(median "$n" floor 3)" \
      "$(median "$n" tenantctl 2)" "$(median "$n" tenantctl 3)" \
      "$(median "$n" compose 2)" "$(median "$n" compose 3)" \
      "$(median "$n" before 2)" "$(median "$n" before 3)"
  done
  echo
  echo "Cold samples in run order (s):"
  echo
  for n in $SIZES; do
    for c in floor tenantctl compose before; do
      [[ -s $WORK/samples.$n.$c ]] && printf -- '- N=%s %s: %s\n' "$n" "$c" "$(values "$n" "$c")"
    done
  done
} >"$WORK/results.md"
# The newest run first; earlier runs stay below it, under one "Earlier runs" heading.
{
  cat "$WORK/results.md"
  if [[ -s $RESULTS ]]; then
    printf '\n## Earlier runs\n\n'
    tail -n +2 "$RESULTS" | { grep -vx '## Earlier runs' || true; } | sed '/./,$!d'
  fi
} >"$WORK/results.all.md"
cp "$WORK/results.all.md" "$RESULTS"
echo
cat "$WORK/results.md"
