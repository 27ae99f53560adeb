#!/usr/bin/env bash
# Peak resident memory of whole-process `tenantctl validate`, `plan` and `plan -o json` of a
# committed N-tenant repository (default 10,000) in a namespace with nothing on the engine and a
# fresh SQLite file per run, so every tenant is planned for creation. Median of RUNS (default 3)
# of `/usr/bin/time -v`'s "Maximum resident set size".
#
#   cargo build --release                  # the benchmark does not build; it runs target/release
#   bash bench/plan-memory.sh              # from anywhere; needs the Docker engine (plan observes it)
#   N=1000 RUNS=5 bash bench/plan-memory.sh
#   BASELINE=/tmp/tenantctl-before bash bench/plan-memory.sh   # also measures that binary, and
#                                          # fails unless both print byte-for-byte the same plans
#
# The repository, databases and outputs live in a temporary directory removed on exit; the
# namespace (bpm<pid>) only ever gets observed, never written.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

N=${N:-10000}
RUNS=${RUNS:-3}
TENANTCTL=${TENANTCTL:-$ROOT/target/release/tenantctl}
BASELINE=${BASELINE:-}
NS=bpm$$
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

[[ -x /usr/bin/time ]] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
[[ -x $TENANTCTL ]] || { echo "$TENANTCTL not found: cargo build --release first" >&2; exit 1; }

mkdir "$WORK/repo"
tenants_repo "$ROOT" "$WORK/repo" "$N"

# peak_kib LABEL BIN ARGS...: runs BIN on the repository, keeps stdout in $WORK/LABEL.out and
# appends the peak RSS (KiB) to $WORK/LABEL.rss.
peak_kib() {
    local label=$1 bin=$2
    shift 2
    rm -f "$WORK/state.db"
    if ! /usr/bin/time -v -o "$WORK/time.txt" "$bin" --namespace "$NS" --repo "$WORK/repo" \
        --database-url "sqlite://$WORK/state.db" "$@" >"$WORK/$label.out" 2>"$WORK/$label.err"; then
        echo "$label failed:" >&2
        cat "$WORK/$label.err" >&2
        exit 1
    fi
    awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/time.txt" >>"$WORK/$label.rss"
}

median_mb() {
    sort -n "$1" | awk '{ v[NR] = $1 } END { printf "%.0f", ((NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) / 1024 }'
}

declare -A BINS=([current]=$TENANTCTL)
[[ -z $BASELINE ]] || BINS[baseline]=$BASELINE
# Interleaved, so a busy moment on this shared host does not land on one binary only.
for ((run = 1; run <= RUNS; run++)); do
    for who in "${!BINS[@]}"; do
        peak_kib "$who.validate" "${BINS[$who]}" validate
        peak_kib "$who.plan" "${BINS[$who]}" plan
        peak_kib "$who.json" "${BINS[$who]}" plan --output json
    done
done

# Per tenant a network, a volume, a container and a record; and the 3 plan and 3 theme records.
grep -q "^Plan: $((4 * N + 6)) to create, 0 to update" "$WORK/current.plan.out" ||
    { echo "plan did not create everything:" >&2; tail -3 "$WORK/current.plan.out" >&2; exit 1; }
if [[ -n $BASELINE ]]; then
    for what in plan json; do
        cmp "$WORK/baseline.$what.out" "$WORK/current.$what.out" ||
            { echo "plan ($what) output differs between $BASELINE and $TENANTCTL" >&2; exit 1; }
    done
fi

echo "$N tenants, median of $RUNS runs, peak RSS; $(grep -o 'Plan: .*' "$WORK/current.plan.out")"
echo "plan output: text $(wc -c <"$WORK/current.plan.out") bytes, JSON $(wc -c <"$WORK/current.json.out") bytes"
echo
echo "| binary | validate | plan | plan -o json |"
echo "|---|---|---|---|"
for who in baseline current; do
    [[ -n ${BINS[$who]:-} ]] || continue
    printf '| %s | %s MiB | %s MiB | %s MiB |\n' "${BINS[$who]}" "$(median_mb "$WORK/$who.validate.rss")" \
        "$(median_mb "$WORK/$who.plan.rss")" "$(median_mb "$WORK/$who.json.rss")"
done
[[ -z $BASELINE ]] || echo "(text and JSON plans of both binaries are byte-for-byte the same)"
