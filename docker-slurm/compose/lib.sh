# Shared settings for the compose cluster scripts (sourced, not run).
# Engine: SLURMDAG_COMPOSE_ENGINE=podman|docker, otherwise docker when its daemon answers, else podman.
COMPOSE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$COMPOSE_DIR/../.." && pwd)
CONFIG_DIR="$REPO_DIR/docker-slurm/config"        # the templates shared with the namespace cluster
RUN_DIR=${SLURMDAG_COMPOSE_RUN:-$COMPOSE_DIR/run}  # rendered config, munge socket, logs
SHARED_DIR=${SLURMDAG_COMPOSE_SHARED:-$RUN_DIR/shared}  # same absolute path on the host and in every container
PROJECT=slurmdag-compose
IMAGE=localhost/slurmdag-slurm:latest
LOCAL_BASE_IMAGE=localhost/debian:bookworm
SUBNET_PREFIX=${SLURMDAG_COMPOSE_SUBNET_PREFIX:-10.78.0}   # a /24; .1 is the gateway (the host)

_engine=${SLURMDAG_COMPOSE_ENGINE:-}
if [ -z "$_engine" ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then _engine=docker
    elif command -v podman >/dev/null 2>&1; then _engine=podman
    else echo "compose: neither a running Docker engine nor podman found" >&2; exit 1
    fi
fi
case "$_engine" in
    podman)
        # Project-owned Podman settings (runc, ulimits that fit this kind of host); Docker ignores them.
        export CONTAINERS_CONF="$COMPOSE_DIR/containers.conf"
        ENGINE=(podman)
        COMPOSE=(podman-compose)
        command -v podman-compose >/dev/null || {
            echo "compose: podman-compose not found: python3 -m pip install podman-compose==1.6.0" >&2; exit 1; }
        ;;
    docker)
        ENGINE=(docker)
        COMPOSE=(docker compose)
        ;;
    *) echo "compose: SLURMDAG_COMPOSE_ENGINE must be podman or docker, not '$_engine'" >&2; exit 2 ;;
esac
ENGINE_NAME=$_engine
unset _engine

# Variables compose.yaml interpolates.
export SLURMDAG_COMPOSE_IMAGE=$IMAGE
export SLURMDAG_COMPOSE_RUN_DIR=$RUN_DIR
export SLURMDAG_COMPOSE_SHARED_DIR=$SHARED_DIR
export SLURMDAG_COMPOSE_SUBNET_PREFIX=$SUBNET_PREFIX

compose() { "${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_DIR/compose.yaml" "$@"; }
