# shellcheck shell=bash
# Shared by the bench scripts: `source "$(dirname "$0")/lib.sh"`.

# remove_namespace NS: every swarm service (when this engine is a swarm manager), container (with
# its anonymous volumes), network and volume labelled with tenantctl namespace NS.
remove_namespace() {
    local ns=$1 n
    remove_services "$ns"
    # One call each for containers and volumes (the CLI removes containers in parallel);
    # networks one at a time, the engine serialises their removal anyway.
    docker ps -aq --filter "label=tenantctl.namespace=$ns" | xargs -r docker rm -f -v >/dev/null
    for n in $(docker network ls -q --filter "label=tenantctl.namespace=$ns"); do remove_network "$n"; done
    docker volume ls -q --filter "label=tenantctl.namespace=$ns" | xargs -r docker volume rm >/dev/null
}

# remove_services NS: NS's swarm services (`--runtime swarm`), then waits until their task
# containers are gone: an overlay network cannot be removed while a task is attached to it, nor a
# volume while a task mounts it. Waits at most REMOVE_TASKS_TIMEOUT seconds (default 120), then
# removes what is left by force (the services are gone, nothing reschedules them). Does nothing
# when this engine is not a swarm manager (no swarm, or a worker: it cannot list services).
remove_services() {
    local ns=$1 names deadline
    [ "$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" = true ] || return 0
    names=$(docker service ls --filter "label=tenantctl.namespace=$ns" --format '{{.Name}}')
    [ -n "$names" ] || return 0
    # Names, not `ls -q` ids: `service ls` prints ids cut to 12 characters, task containers carry
    # the full one; `com.docker.swarm.service.name` is exact.
    echo "$names" | xargs -r docker service rm >/dev/null
    deadline=$((SECONDS + ${REMOVE_TASKS_TIMEOUT:-120}))
    while [ -n "$(task_containers "$names")" ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            task_containers "$names" | xargs -r docker rm -f -v >/dev/null 2>&1 || true
            break
        fi
        sleep 0.5
    done
}

# task_containers NAMES: ids of the containers (any state) of the swarm services named in NAMES
# (one a line) on this node.
task_containers() {
    docker ps -a --filter label=com.docker.swarm.service.name \
        --format '{{.ID}} {{.Label "com.docker.swarm.service.name"}}' |
        awk 'NR == FNR { want[$1] = 1; next } want[$2] { print $1 }' <(echo "$1") -
}

# remove_network ID: removes a network; an overlay network a task just left can stay "in use" on
# the manager for a moment, so retry for up to 30 s before giving up with the engine's error.
remove_network() {
    local i
    for i in $(seq 1 60); do
        docker network rm "$1" >/dev/null 2>&1 && return 0
        docker network inspect "$1" >/dev/null 2>&1 || return 0 # gone meanwhile
        [ "$i" -lt 60 ] && sleep 0.5
    done
    docker network rm "$1" >/dev/null
}

# commit_all DIR MESSAGE: a new repository at DIR (if none) with everything in it committed.
commit_all() {
    [ -d "$1/.git" ] || git -C "$1" init -q -b main
    git -C "$1" -c user.name=bench -c user.email=bench@invalid add -A
    git -C "$1" -c user.name=bench -c user.email=bench@invalid commit -qm "$2"
}

# tenants_repo ROOT DIR N [SPEC_LINE]: a committed repository at DIR with ROOT's plans and themes
# and N converted tenants t0…t(N-1) spread over them; SPEC_LINE (e.g. `env: { REV: "0" }`) is
# added to each tenant's spec.
tenants_repo() {
    local root=$1 dir=$2 n=$3 extra=${4:-}
    local plans=(starter professional enterprise) themes=(modern classic minimal)
    cp -r "$root/plans" "$root/themes" "$dir/"
    mkdir -p "$dir/tenants"
    for i in $(seq 0 $((n - 1))); do
        {
            echo "kind: Tenant"
            echo "name: t$i"
            echo "spec:"
            echo "  displayName: Tenant $i"
            echo "  owner: ops@t$i.example"
            echo "  plan: ${plans[$((i % 3))]}"
            echo "  theme: ${themes[$((i / 3 % 3))]}"
            echo "  billing: { converted: true }"
            [ -z "$extra" ] || echo "  $extra"
        } > "$dir/tenants/t$i.yaml"
    done
    commit_all "$dir" init
}
