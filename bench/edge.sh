#!/usr/bin/env bash
# Requests/s and p50/p99 latency of one tenant's built-in site `/health`, side by side in one run:
#   direct   the site's loopback published port (Docker's userland proxy, then the container)
#   edge     `tenantctl edge` (a host process here, host networking as the edge container has)
#            routing by Host to that published port
#   nginx    Debian's nginx, one worker, keep-alive upstream pool, the same Host routing
#   caddy    Debian's caddy 2.6, reverse_proxy, the same Host routing
# Each proxy sets X-Forwarded-* and writes an access log line per request to a file (the edge's
# stdout goes to a file), so all do the same work. Load: wrk -t1 -c16 (BENCH_WRK), BENCH_SECONDS
# (10) per measurement after 2 s of warm-up, BENCH_RUNS (3) rounds interleaved
# (direct, edge, nginx, caddy, then again); the median run of each is reported.
#
#   bash bench/edge.sh                 # from the repository root
#   BENCH_RUNS=5 BENCH_EDGE_THREADS=2 bash bench/edge.sh
#
# Everything it makes (namespace b<pid>…, processes, files) is removed on exit.
set -euo pipefail
export LC_ALL=C
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

RUNS=${BENCH_RUNS:-3}
SECONDS_EACH=${BENCH_SECONDS:-10}
WRK=${BENCH_WRK:-"-t1 -c16"}
EDGE_THREADS=${BENCH_EDGE_THREADS:-1}
CONTENDERS=${BENCH_CONTENDERS:-"direct edge nginx caddy"}
HOST=bench.tenants.localhost

for tool in docker cargo git wrk nginx caddy curl awk; do
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
case $BUILD in
  release) log "building tenantctl (release)"; cargo build --release --locked --quiet --bin tenantctl ;;
  debug) log "building tenantctl (dev profile)"; cargo build --locked --quiet --bin tenantctl ;;
  *) echo "BENCH_BUILD: release or debug" >&2; exit 1 ;;
esac
TENANTCTL=$ROOT/target/$BUILD/tenantctl

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

# --- the edge
EDGE_PORT=$(free_port)
EDGE_ADMIN=$(free_port)
mkdir -p "$WORK/edge"
TENANTCTL_EDGE_HTTP=127.0.0.1:$EDGE_PORT TENANTCTL_EDGE_ADMIN=127.0.0.1:$EDGE_ADMIN \
  TENANTCTL_EDGE_DATA=$WORK/edge TENANTCTL_EDGE_THREADS=$EDGE_THREADS RUST_LOG=warn \
  "$TENANTCTL" edge >"$WORK/edge-access.log" 2>"$WORK/edge.err" &
PIDS+=($!)
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$EDGE_ADMIN/healthz" >/dev/null && break
  sleep 0.1
done
curl -sf -X PUT -H "Authorization: Bearer $(cat "$WORK/edge/admin-token")" \
  --data-binary "{\"generation\":\"bench\",\"routes\":[{\"tenant\":\"bench\",\"hosts\":[\"$HOST\"],\"upstream\":\"127.0.0.1:$SITE_PORT\",\"state\":\"active\"}]}" \
  "http://127.0.0.1:$EDGE_ADMIN/routes" >/dev/null

# --- nginx: one worker, keep-alive upstream
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
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
}
EOF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
PIDS+=($!)

# --- caddy
CADDY_PORT=$(free_port)
mkdir -p "$WORK/caddy"
cat >"$WORK/caddy/Caddyfile" <<EOF
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
EOF
XDG_DATA_HOME=$WORK/caddy XDG_CONFIG_HOME=$WORK/caddy HOME=$WORK/caddy \
  caddy run --config "$WORK/caddy/Caddyfile" --adapter caddyfile >"$WORK/caddy/out.log" 2>&1 &
PIDS+=($!)

declare -A URL=(
  [direct]="http://127.0.0.1:$SITE_PORT/health"
  [edge]="http://127.0.0.1:$EDGE_PORT/health"
  [nginx]="http://127.0.0.1:$NGINX_PORT/health"
  [caddy]="http://127.0.0.1:$CADDY_PORT/health"
)
for c in $CONTENDERS; do wait_http "${URL[$c]}" "$HOST" || { echo "$c did not come up; see $WORK" >&2; BENCH_KEEP=1; exit 1; }; done

# wrk's latency figures in ms (it prints us, ms or s).
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000
    printf "%.2f", n }'
}
measure() { # CONTENDER RUN -> "rps p50 p99" in $WORK/CONTENDER.RUN
  local c=$1 run=$2 out
  # shellcheck disable=SC2086
  wrk $WRK -d2s -H "Host: $HOST" "${URL[$c]}" >/dev/null
  # shellcheck disable=SC2086
  out=$(wrk $WRK -d"${SECONDS_EACH}s" --latency -H "Host: $HOST" "${URL[$c]}")
  echo "$out" >"$WORK/$c.$run.wrk"
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  errors=$(awk '/Non-2xx|Socket errors/ { print }' <<<"$out" | tr '\n' ' ')
  echo "$rps $p50 $p99" >"$WORK/res.$c.$run"
  log "run $run $c: ${rps} req/s, p50 ${p50} ms, p99 ${p99} ms ${errors}"
}

for run in $(seq 1 "$RUNS"); do
  for c in $CONTENDERS; do measure "$c" "$run"; done
done

median_of() { # CONTENDER -> the run with the median req/s: "rps p50 p99"
  cat "$WORK/res.$1".* | sort -n -k1,1 | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'
}
DIRECT_RPS=$(median_of direct | awk '{ print $1 }')
echo
echo "wrk $WRK, ${SECONDS_EACH}s, median of $RUNS; $(nproc) CPUs; tenantctl $BUILD build, edge threads: $EDGE_THREADS; nginx 1 worker; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| path | req/s | × direct | p50 (ms) | p99 (ms) |"
echo "|---|---|---|---|---|"
for c in $CONTENDERS; do
  read -r rps p50 p99 <<<"$(median_of "$c")"
  ratio=$(awk -v a="$rps" -v b="${DIRECT_RPS:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
  printf '| %s | %.0f | %s | %s | %s |\n' "$c" "$rps" "$ratio" "$p50" "$p99"
done
