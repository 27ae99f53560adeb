#!/usr/bin/env bash
# Requests/s and p50/p99 latency of one tenant's built-in site `/health`, side by side in one run:
#   direct       the site's loopback published port (Docker's userland proxy, then the container)
#   edge         `tenantctl edge` as a host process (host networking, as the edge container
#                has), routing by Host to that published port; its stdout (the access log) to a file
#   edge-docker  the same edge as the reconciler runs it: a container of the built-in site image
#                on the host's network, read-only, no capabilities, its access log on stdout
#                through dockerd's json-file driver (10m x 3)
#   nginx        Debian's nginx, one worker, keep-alive upstream pool, the same Host routing
#   caddy        Debian's caddy 2.6, reverse_proxy (keep-alive upstream by default), same routing
#   pingora-floor  examples/pingora_floor.rs: the barest Pingora proxy (one upstream, every hook at
#                its default, no Host routing, no X-Forwarded-*, no log, no metrics), one thread,
#                the edge's server configuration: what Pingora itself costs, the edge's floor
# Every proxy sets X-Forwarded-* and writes one access-log line per request to a file (except
# edge-docker: through dockerd, as in production). The edge runs BENCH_EDGE_THREADS (1) worker
# threads, nginx one worker, Caddy Go's default (GOMAXPROCS = all cores). Load: wrk -t1 -c16
# (BENCH_WRK), BENCH_SECONDS (10) per measurement after 2 s of warm-up, BENCH_RUNS (5) rounds
# interleaved (direct, edge, ..., then again); each column's median over the rounds is reported,
# and every round is printed. CPU time of each process on the path (from /proc, during the
# measurement) is reported per request: the proxy itself; the whole path (wrk, the proxy,
# docker-proxy, the site); dockerd (its json-file logging for edge-docker, and whatever else the
# engine does meanwhile: on a shared machine, others' containers).
#
#   bash bench/edge.sh                 # from the repository root
#   BENCH_RUNS=5 BENCH_EDGE_THREADS=2 bash bench/edge.sh
#   BENCH_UPSTREAM=static bash bench/edge.sh   # every proxy to a static nginx: no docker-proxy, no site
#   BENCH_TENANTCTL=/tmp/tenantctl-old bash bench/edge.sh   # a binary built elsewhere
#   BENCH_EDGE_VARIANTS="edge-old=/tmp/tenantctl-old edge-2t=target/release/tenantctl,TENANTCTL_EDGE_THREADS=2" bash bench/edge.sh
#
# The release binary is built (nice -n 10) unless BENCH_BUILD=debug; the site image is built by
# `apply` from that very binary (its fingerprint label is checked). Everything it makes
# (namespace b<pid>..., processes, files) is removed on exit.
set -euo pipefail
export LC_ALL=C
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

RUNS=${BENCH_RUNS:-5}
SECONDS_EACH=${BENCH_SECONDS:-10}
WRK=${BENCH_WRK:-"-t1 -c16"}
EDGE_THREADS=${BENCH_EDGE_THREADS:-1}
CONTENDERS=${BENCH_CONTENDERS:-"direct edge edge-docker nginx caddy pingora-floor"}
HOST=bench.tenants.localhost

for tool in docker cargo git wrk nginx caddy curl awk python3; do
  command -v "$tool" >/dev/null || { echo "bench/edge.sh needs $tool" >&2; exit 1; }
done

ID=b$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tenantctl-edge-bench.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  remove_namespace "$ID" 2>/dev/null || true
  [ -n "${BENCH_KEEP:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "== $*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # URL HOST: until it answers 200, at most 30 s
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $2" "$1")" = 200 ] && return 0
    sleep 0.1
  done
  echo "$1 (Host: $2) did not answer 200" >&2
  return 1
}

# BENCH_BUILD=debug measures the dev profile's binary (dependencies at opt-level 1, tenantctl's
# own code unoptimised): quicker to get on a machine without a release build, and pessimistic
# for the edge.
BUILD=${BENCH_BUILD:-release}
if [ -n "${BENCH_TENANTCTL:-}" ]; then
  # A binary built elsewhere (e.g. another commit's release build, to compare).
  TENANTCTL=$(realpath "$BENCH_TENANTCTL")
  BUILD="$BUILD ($TENANTCTL)"
else
  case $BUILD in
    release) log "building tenantctl (release)"; nice -n 10 cargo build --release --locked --quiet --bin tenantctl ;;
    debug) log "building tenantctl (dev profile)"; nice -n 10 cargo build --locked --quiet --bin tenantctl ;;
    *) echo "BENCH_BUILD: release or debug" >&2; exit 1 ;;
  esac
  TENANTCTL=$ROOT/target/$BUILD/tenantctl
fi
case " $CONTENDERS " in
  *" pingora-floor "*)
    log "building examples/pingora_floor (release)"
    nice -n 10 cargo build --release --locked --quiet --example pingora_floor
    FLOOR=$ROOT/target/release/examples/pingora_floor ;;
esac

log "one tenant (built-in site, 2 CPUs) in namespace $ID"
REPO=$WORK/repo
mkdir -p "$REPO/plans" "$REPO/themes" "$REPO/tenants"
cat >"$REPO/plans/bench.yaml" <<'EOF'
kind: Plan
name: bench
spec:
  displayName: Bench
  price: { amount: 1, currency: USD, cycle: monthly }
  resources: { cpus: 2.0, memory: 256Mi, pids: 256 }
EOF
cp "$ROOT/themes/modern.yaml" "$REPO/themes/"
cat >"$REPO/tenants/bench.yaml" <<'EOF'
kind: Tenant
name: bench
spec:
  displayName: Bench
  owner: ops@bench.example
  plan: bench
  theme: modern
  billing: { converted: true }
EOF
commit_all "$REPO" init
"$TENANTCTL" --namespace "$ID" --repo "$REPO" --database-url "sqlite://$WORK/t.db" \
  apply --auto-approve --no-color --subnet-pool 10.251.0.0/24 >"$WORK/apply.log" 2>&1 || {
  cat "$WORK/apply.log" >&2
  exit 1
}
SITE=$(docker port "$ID-bench" 8080/tcp | head -1)
SITE_PORT=${SITE##*:}
log "site published on 127.0.0.1:$SITE_PORT"

# The site must run the binary measured: `apply` builds the site image from the running
# tenantctl and labels it with that binary's fingerprint (size-mtime.nsec-inode).
IMAGE=$(docker inspect --format '{{.Image}}' "$ID-bench")
WANT_FP=$(stat -c '%s-%.9Y-%i' "$TENANTCTL")
HAVE_FP=$(docker image inspect --format '{{index .Config.Labels "tenantctl.exe-fingerprint"}}' "$IMAGE")
if [ "$HAVE_FP" != "$WANT_FP" ]; then
  echo "the site image $IMAGE was built from $HAVE_FP, not from $TENANTCTL ($WANT_FP)" >&2
  exit 1
fi
log "site image ${IMAGE:7:12} built from $TENANTCTL"

# nginx_conf DIR: writes DIR/nginx.conf for one worker in the foreground, its files under DIR;
# the http block's directives come from stdin.
nginx_conf() {
  local dir=$1
  mkdir -p "$dir"
  {
    cat <<HEAD
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
HEAD
    cat
    echo "}"
  } >"$dir/nginx.conf"
}

# BENCH_UPSTREAM=static: every contender goes to a static nginx on loopback (one worker,
# `return 200`, no log) instead of the site's published port, so neither docker-proxy nor the
# site is on the path and each proxy's own cost per request stands alone ("direct" is then that
# nginx). The site container still runs, idle.
UPSTREAM=${BENCH_UPSTREAM:-site}
STATIC_PID=
case $UPSTREAM in
  site) ;;
  static)
    SITE_PORT=$(free_port)
    nginx_conf "$WORK/static" <<STATIC
  access_log off;
  server {
    listen 127.0.0.1:$SITE_PORT;
    location / { default_type application/json; return 200 '{"status":"ok","tenant":"bench"}'; }
  }
STATIC
    nginx -p "$WORK/static" -c "$WORK/static/nginx.conf" -e "$WORK/static/error.log" &
    STATIC_PID=$!
    PIDS+=($!)
    log "upstream: a static nginx on 127.0.0.1:$SITE_PORT (BENCH_UPSTREAM=static)"
    ;;
  *) echo "BENCH_UPSTREAM: site or static" >&2; exit 1 ;;
esac

put_routes() { # ADMIN_ADDR TOKEN
  curl -sf -X PUT -H "Authorization: Bearer $2" \
    --data-binary "{\"generation\":\"bench\",\"routes\":[{\"tenant\":\"bench\",\"hosts\":[\"$HOST\"],\"upstream\":\"127.0.0.1:$SITE_PORT\",\"state\":\"active\"}]}" \
    "http://$1/routes" >/dev/null
}
wait_admin() { # ADMIN_ADDR
  for _ in $(seq 1 100); do
    curl -sf "http://$1/healthz" >/dev/null && return 0
    sleep 0.1
  done
  echo "the edge's admin API on $1 did not answer" >&2
  return 1
}
declare -A PID

# --- the edge, a host process
declare -A URL
start_edge() { # NAME BINARY [VAR=VALUE...]: an edge host process routing $HOST, contender NAME
  local name=$1 binary=$2 port admin
  shift 2
  port=$(free_port)
  admin=127.0.0.1:$(free_port)
  mkdir -p "$WORK/$name"
  env TENANTCTL_EDGE_HTTP="127.0.0.1:$port" TENANTCTL_EDGE_ADMIN="$admin" \
    TENANTCTL_EDGE_DATA="$WORK/$name" TENANTCTL_EDGE_THREADS="$EDGE_THREADS" RUST_LOG=warn "$@" \
    "$binary" edge >"$WORK/$name-access.log" 2>"$WORK/$name.err" &
  PID[$name]=$!
  PIDS+=($!)
  wait_admin "$admin"
  put_routes "$admin" "$(cat "$WORK/$name/admin-token")"
  URL[$name]="http://127.0.0.1:$port/health"
}
start_edge edge "$TENANTCTL"
# BENCH_EDGE_VARIANTS="NAME=BINARY[,VAR=VALUE...] ...": more edge host processes, each a
# contender of its own (appended to BENCH_CONTENDERS), e.g. another commit's build beside this one.
for variant in ${BENCH_EDGE_VARIANTS:-}; do
  IFS=, read -r -a parts <<<"${variant#*=}"
  start_edge "${variant%%=*}" "${parts[@]}"
  CONTENDERS="$CONTENDERS ${variant%%=*}"
done

# --- the edge as the reconciler runs it: a container of the site image on the host's network
EDGEC_PORT=$(free_port)
EDGEC_ADMIN=127.0.0.1:$(free_port)
mkdir -p "$WORK/edgec"
chown 10001:10001 "$WORK/edgec" 2>/dev/null || chmod 0777 "$WORK/edgec"
docker run -d --name "$ID-edgebench" --label "tenantctl.namespace=$ID" \
  --network host --user 10001:10001 --read-only --cap-drop ALL \
  --security-opt no-new-privileges:true \
  --log-driver json-file --log-opt max-size=10m --log-opt max-file=3 \
  -v "$WORK/edgec:/data" \
  -e "TENANTCTL_EDGE_HTTP=127.0.0.1:$EDGEC_PORT" -e "TENANTCTL_EDGE_ADMIN=$EDGEC_ADMIN" \
  -e TENANTCTL_EDGE_DATA=/data -e "TENANTCTL_EDGE_THREADS=$EDGE_THREADS" -e RUST_LOG=warn \
  "$IMAGE" edge >/dev/null
PID[edge-docker]=$(docker inspect --format '{{.State.Pid}}' "$ID-edgebench")
wait_admin "$EDGEC_ADMIN"
put_routes "$EDGEC_ADMIN" "$(cat "$WORK/edgec/admin-token")"

# --- nginx: one worker, keep-alive upstream
NGINX_PORT=$(free_port)
nginx_conf "$WORK/nginx" <<NGINX
  access_log $WORK/nginx/access.log;
  upstream site { server 127.0.0.1:$SITE_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT default_server;
    return 404;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    server_name $HOST;
    location / {
      proxy_pass http://site;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$http_host;
    }
  }
NGINX
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
PID[nginx]=$!
PIDS+=($!)

# --- caddy
CADDY_PORT=$(free_port)
mkdir -p "$WORK/caddy"
cat >"$WORK/caddy/Caddyfile" <<CADDY
{
  admin off
  auto_https off
}
http://$HOST:$CADDY_PORT {
  bind 127.0.0.1
  reverse_proxy 127.0.0.1:$SITE_PORT
  log {
    output file $WORK/caddy/access.log
  }
}
CADDY
XDG_DATA_HOME=$WORK/caddy XDG_CONFIG_HOME=$WORK/caddy HOME=$WORK/caddy \
  caddy run --config "$WORK/caddy/Caddyfile" --adapter caddyfile >"$WORK/caddy/out.log" 2>&1 &
PID[caddy]=$!
PIDS+=($!)

# --- the Pingora floor: no routing, so it serves only what the bench asks of it
if [ -n "${FLOOR:-}" ]; then
  FLOOR_PORT=$(free_port)
  "$FLOOR" "127.0.0.1:$FLOOR_PORT" "127.0.0.1:$SITE_PORT" "$EDGE_THREADS" >"$WORK/floor.log" 2>&1 &
  PID[pingora-floor]=$!
  PIDS+=($!)
  URL[pingora-floor]="http://127.0.0.1:$FLOOR_PORT/health"
fi

URL[direct]="http://127.0.0.1:$SITE_PORT/health"
URL[edge-docker]="http://127.0.0.1:$EDGEC_PORT/health"
URL[nginx]="http://127.0.0.1:$NGINX_PORT/health"
URL[caddy]="http://127.0.0.1:$CADDY_PORT/health"
for c in $CONTENDERS; do wait_http "${URL[$c]}" "$HOST" || { echo "$c did not come up; see $WORK" >&2; BENCH_KEEP=1; exit 1; }; done

# CPU accounting: the site's processes, the docker-proxy of its port, dockerd alone (not its
# children: those are every container of the engine).
if [ "$UPSTREAM" = static ]; then
  SITE_PID=$STATIC_PID
  PROXY_PID=
else
  SITE_PID=$(docker inspect --format '{{.State.Pid}}' "$ID-bench")
  PROXY_PID=$(pgrep -f "docker-proxy .*-host-port $SITE_PORT " | head -1 || true)
fi
DOCKERD_PID=$(pgrep -xo dockerd || true)
descendants() { # PID -> PID and every descendant
  local p=$1 c
  echo "$p"
  for c in $(pgrep -P "$p" 2>/dev/null); do descendants "$c"; done
}
ticks() { # PID... -> utime+stime of them and their descendants, in clock ticks
  local p files=()
  for p in "$@"; do
    [ -n "$p" ] || continue
    for d in $(descendants "$p"); do files+=("/proc/$d/stat"); done
  done
  stat_ticks "${files[@]}"
}
stat_ticks() { # /proc/PID/stat... -> their utime+stime (a process gone meanwhile counts 0)
  # After the command (which may hold spaces) utime is the 12th field, stime the 13th.
  { [ "$#" -gt 0 ] && cat "$@" 2>/dev/null || true; } | awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { print t + 0 }'
}
HZ=$(getconf CLK_TCK)

# wrk's latency figures in ms (it prints us, ms or s).
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000
    printf "%.2f", n }'
}
per_req() { # TICKS REQUESTS -> microseconds of CPU per request
  awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "-" }'
}
measure() { # CONTENDER RUN -> "rps p50 p99 proxy_us path_us dockerd_us" in $WORK/res.CONTENDER.RUN
  local c=$1 run=$2 out proxy_pid=${PID[$1]:-}
  # shellcheck disable=SC2086
  wrk $WRK -d2s -H "Host: $HOST" "${URL[$c]}" >/dev/null
  local p0 s0 d0 x0 p1 s1 d1 x1
  p0=$(ticks "$proxy_pid"); s0=$(ticks "$SITE_PID"); d0=$(stat_ticks "/proc/$DOCKERD_PID/stat"); x0=$(ticks "$PROXY_PID")
  # shellcheck disable=SC2086
  out=$( { /usr/bin/time -f 'wrk-cpu %U %S' wrk $WRK -d"${SECONDS_EACH}s" --latency -H "Host: $HOST" "${URL[$c]}"; } 2>&1)
  p1=$(ticks "$proxy_pid"); s1=$(ticks "$SITE_PID"); d1=$(stat_ticks "/proc/$DOCKERD_PID/stat"); x1=$(ticks "$PROXY_PID")
  echo "$out" >"$WORK/$c.$run.wrk"
  local rps p50 p99 errors requests wrk_ticks proxy_us path_us dockerd_us
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  requests=$(awk '/requests in/ { print $1 }' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  errors=$(awk '/Non-2xx|Socket errors/ { print }' <<<"$out" | tr '\n' ' ')
  wrk_ticks=$(awk -v hz="$HZ" '$1 == "wrk-cpu" { printf "%d", ($2 + $3) * hz }' <<<"$out")
  if [ -n "$proxy_pid" ]; then proxy_us=$(per_req $((p1 - p0)) "$requests"); else proxy_us=-; fi
  path_us=$(per_req $((p1 - p0 + s1 - s0 + x1 - x0 + wrk_ticks)) "$requests")
  dockerd_us=$(per_req $((d1 - d0)) "$requests")
  echo "$rps $p50 $p99 $proxy_us $path_us $dockerd_us" >"$WORK/res.$c.$run"
  log "run $run $c: ${rps} req/s, p50 ${p50} ms, p99 ${p99} ms; CPU us/request: proxy ${proxy_us}, path ${path_us} (wrk $(per_req "$wrk_ticks" "$requests"), docker-proxy $(per_req $((x1 - x0)) "$requests"), site $(per_req $((s1 - s0)) "$requests")), dockerd ${dockerd_us}; load $(cut -d' ' -f1 /proc/loadavg) ${errors}"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for run in $(seq 1 "$RUNS"); do
  for c in $CONTENDERS; do measure "$c" "$run"; done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

median() { # CONTENDER COLUMN -> the median of that column over the runs
  awk -v k="$2" '{ print $k }' "$WORK/res.$1".* | sort -g | awk '{ a[NR] = $0 } END {
    if (NR % 2) print a[(NR + 1) / 2]; else if (a[NR / 2] == "-") print "-"; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
DIRECT_RPS=$(median direct 1 2>/dev/null || echo 0)
echo
echo "wrk $WRK, ${SECONDS_EACH}s, median of $RUNS rounds; $(nproc) CPUs; tenantctl $BUILD build, upstream: $UPSTREAM; edge and floor threads: $EDGE_THREADS; nginx 1 worker; caddy $(caddy version | cut -d' ' -f1); load average before $LOAD_BEFORE, after $LOAD_AFTER"
echo
echo "| path | req/s | x direct | p50 (ms) | p99 (ms) | proxy CPU/req (us) | path CPU/req (us) | dockerd CPU/req (us) |"
echo "|---|---|---|---|---|---|---|---|"
for c in $CONTENDERS; do
  rps=$(median "$c" 1)
  ratio=$(awk -v a="$rps" -v b="${DIRECT_RPS:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
  printf '| %s | %.0f | %s | %s | %s | %s | %s | %s |\n' "$c" "$rps" "$ratio" "$(median "$c" 2)" "$(median "$c" 3)" "$(median "$c" 4)" "$(median "$c" 5)" "$(median "$c" 6)"
done
