# Shared by the bench scripts: `source "$(dirname "$0")/lib.sh"`.

# remove_namespace NS: every container (with its anonymous volumes), network and volume labelled
# with tenantctl namespace NS.
remove_namespace() {
    local ns=$1
    for c in $(docker ps -aq --filter "label=tenantctl.namespace=$ns"); do docker rm -f -v "$c" >/dev/null; done
    for n in $(docker network ls -q --filter "label=tenantctl.namespace=$ns"); do docker network rm "$n" >/dev/null; done
    for v in $(docker volume ls -q --filter "label=tenantctl.namespace=$ns"); do docker volume rm "$v" >/dev/null; done
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
