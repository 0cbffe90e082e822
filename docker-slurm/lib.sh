# shellcheck shell=bash
# Shared logic of docker-slurm/{up,down,status,reset,env}. Sourced, never run.
#
# The cluster: munged, MariaDB + slurmdbd (optional), slurmctld in the root
# network namespace, and N slurmd "nodes", each in its own network + UTS
# namespace (veth to a bridge; nodeN = <subnet>.1N). Everything it writes lives
# under $SC_DIR (default docker-slurm/run, or run-<version> for SLURM_VERSION
# other than 22.05, or $SLURM_CLUSTER_DIR). version.sh derives the names.

set -euo pipefail

SC_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$SC_HOME/version.sh"
SC_DIR=${SLURM_CLUSTER_DIR:-$SC_DEFAULT_RUN_DIR}
mkdir -p "$SC_DIR"
SC_DIR=$(cd "$SC_DIR" && pwd)

ETC_DIR=$SC_DIR/etc
STATE_DIR=$SC_DIR/state
SPOOL_DIR=$SC_DIR/spool
LOG_DIR=$SC_DIR/log
PID_DIR=$SC_DIR/pid
DB_DIR=$SC_DIR/db
MUNGE_DIR=$SC_DIR/munge
MUNGE_SOCKET=$MUNGE_DIR/munge.socket.2
DB_SOCKET=$DB_DIR/mysqld.sock
KNOBS_FILE=$SC_DIR/knobs
FIRST_JOB_ID_FILE=$SC_DIR/first_job_id
VERSION_FILE=$SC_DIR/slurm_version   # which SLURM_VERSION this run dir belongs to
export SLURM_CONF=$ETC_DIR/slurm.conf
# A source-built version's commands and daemons come first (22.05 uses Debian's, already on PATH).
if [ -n "$SC_PREFIX" ]; then export PATH=$SC_PREFIX/bin:$SC_PREFIX/sbin:$PATH; fi
CTLD_ADDR=$SUBNET_PREFIX.1

CLUSTER_NAME=slurmdag
if [ -z "$SC_PREFIX" ]; then
    PACKAGES="slurmctld slurmd slurm-client munge slurmdbd mariadb-server mariadb-client iproute2"
else
    PACKAGES="munge mariadb-server mariadb-client iproute2"
fi
# What building Slurm from source needs (configure finds munge and mysql_config by itself).
BUILD_PACKAGES="build-essential libmunge-dev libmariadb-dev libmariadb-dev-compat pkg-config bzip2"

log() { printf '%s\n' "$*" >&2; }
die() { printf 'docker-slurm: error: %s\n' "$*" >&2; exit 1; }
now() { printf '%s' "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}'; }

# A run dir belongs to one Slurm version (its state and DB are that version's): never start another in it.
run_dir_version() {
    if [ -s "$VERSION_FILE" ]; then cat "$VERSION_FILE"
    elif [ -e "$ETC_DIR/slurm.conf" ]; then echo 22.05   # run dirs from before SLURM_VERSION existed
    fi
}
have_version=$(run_dir_version)
if [ -n "$have_version" ] && [ "$have_version" != "$SLURM_VERSION" ]; then
    die "run dir $SC_DIR holds a Slurm $have_version cluster, not SLURM_VERSION=$SLURM_VERSION (each version has its own run dir: unset SLURM_CLUSTER_DIR, or give that version)"
fi

require_root() { [ "$(id -u)" = 0 ] || die "must run as root (it creates network namespaces and runs the daemons)"; }

# ---------------------------------------------------------------- knobs
read_knobs() {   # from the environment, with defaults
    K_NODES=${SLURM_NODES:-3}
    K_MIN_JOB_AGE=${SLURM_MIN_JOB_AGE:-300}
    K_MAX_ARRAY_SIZE=${SLURM_MAX_ARRAY_SIZE:-1001}
    K_DEPENDENCY_PARAMETERS=${SLURM_DEPENDENCY_PARAMETERS:-}
    K_CTLD_PARAMETERS=${SLURM_CTLD_PARAMETERS:-}
    K_MAX_JOB_COUNT=${SLURM_MAX_JOB_COUNT:-10000}
    K_WITH_DB=${WITH_DB:-1}
    [[ $K_NODES =~ ^[0-9]+$ ]] && (( K_NODES >= 1 && K_NODES <= 20 )) || die "SLURM_NODES must be 1..20 (got '$K_NODES')"
    [[ $K_MIN_JOB_AGE =~ ^[0-9]+$ ]] || die "SLURM_MIN_JOB_AGE must be an integer"
    [[ $K_MAX_ARRAY_SIZE =~ ^[0-9]+$ ]] || die "SLURM_MAX_ARRAY_SIZE must be an integer"
    [[ $K_MAX_JOB_COUNT =~ ^[0-9]+$ ]] || die "SLURM_MAX_JOB_COUNT must be an integer"
    [[ $K_WITH_DB =~ ^[01]$ ]] || die "WITH_DB must be 0 or 1"
}

knobs_text() {
    printf 'SLURM_NODES=%s\nSLURM_MIN_JOB_AGE=%s\nSLURM_MAX_ARRAY_SIZE=%s\nSLURM_DEPENDENCY_PARAMETERS=%s\nSLURM_MAX_JOB_COUNT=%s\nWITH_DB=%s\n' \
        "$K_NODES" "$K_MIN_JOB_AGE" "$K_MAX_ARRAY_SIZE" "$K_DEPENDENCY_PARAMETERS" "$K_MAX_JOB_COUNT" "$K_WITH_DB"
    # only when set: run dirs recorded before this knob existed stay unchanged
    [ -z "$K_CTLD_PARAMETERS" ] || printf 'SLURM_CTLD_PARAMETERS=%s\n' "$K_CTLD_PARAMETERS"
}

recorded_knob() {   # recorded_knob NAME -> value from the run dir (empty if none)
    [ -f "$KNOBS_FILE" ] || return 0
    sed -n "s/^$1=//p" "$KNOBS_FILE"
}

recorded_nodes() { local n; n=$(recorded_knob SLURM_NODES); echo "${n:-0}"; }

node_addr() { echo "$SUBNET_PREFIX.1$1"; }

# ---------------------------------------------------------------- rendering
render_configs() {   # render_configs OUTDIR : slurm.conf, slurmdbd.conf, plugstack.conf
    local out=$1 i lines="" list
    for ((i = 1; i <= K_NODES; i++)); do
        lines+="NodeName=node$i NodeAddr=$(node_addr "$i") NodeHostname=node$i CPUs=4 RealMemory=2000 State=UNKNOWN"$'\n'
    done
    list="node[1-$K_NODES]"; ((K_NODES == 1)) && list=node1
    local first_id=1
    [ -f "$FIRST_JOB_ID_FILE" ] && first_id=$(cat "$FIRST_JOB_ID_FILE")
    local dep_line="#DependencyParameters="
    [ -n "$K_DEPENDENCY_PARAMETERS" ] && dep_line="DependencyParameters=$K_DEPENDENCY_PARAMETERS"
    # SlurmctldParameters rides on the same template line only when set: unset, slurm.conf stays byte for byte as
    # before (a changed file would restart the daemons of every cluster already running)
    [ -n "$K_CTLD_PARAMETERS" ] && dep_line+=$'\n'"SlurmctldParameters=$K_CTLD_PARAMETERS"
    local storage=accounting_storage/none
    ((K_WITH_DB)) && storage=accounting_storage/slurmdbd
    mkdir -p "$out"
    CLUSTER_NAME=$CLUSTER_NAME CTLD_HOST=$(hostname -s) CTLD_ADDR=$CTLD_ADDR \
    CTLD_PORT=${SLURM_CTLD_PORT:-$SC_CTLD_PORT} SLURMD_PORT=$SC_SLURMD_PORT DBD_HOST=localhost \
    DBD_PORT=${SLURM_DBD_PORT:-$SC_DBD_PORT} \
    MUNGE_SOCKET=$MUNGE_SOCKET STATE_DIR=$STATE_DIR SPOOL_DIR=$SPOOL_DIR PID_DIR=$PID_DIR \
    LOG_DIR=$LOG_DIR ETC_DIR=$ETC_DIR MIN_JOB_AGE=$K_MIN_JOB_AGE MAX_ARRAY_SIZE=$K_MAX_ARRAY_SIZE \
    MAX_JOB_COUNT=$K_MAX_JOB_COUNT FIRST_JOB_ID=$first_id DEPENDENCY_PARAMETERS_LINE=$dep_line \
    ACCOUNTING_STORAGE_TYPE=$storage NODE_LINES=${lines%$'\n'} NODE_LIST=$list \
    bash -c '
        set -e
        python3 "$0/config/render.py" "$0/config/slurm.conf.in" "$1/slurm.conf"
        python3 "$0/config/render.py" "$0/config/slurmdbd.conf.in" "$1/slurmdbd.conf"
    ' "$SC_HOME" "$out"
    : > "$out/plugstack.conf"
    chmod 600 "$out/slurmdbd.conf"
    # The daemons' /etc/hosts (bind-mounted in their own mount namespace, with_cluster_hosts): the machine's, plus
    # a name for every address of this cluster. Slurm 24.11+ reverse-resolves the peer of every connection
    # (getnameinfo, for its logs) on one of a few worker threads; these addresses are in no DNS, and a resolver that
    # drops a query now and then stalls slurmctld 5 s per lookup -- clients then fail with "Socket timed out".
    {
        cat /etc/hosts
        echo "# slurmdag test cluster $CLUSTER_NAME ($SC_DIR)"
        echo "$CTLD_ADDR sdag-ctld"
        for ((i = 1; i <= K_NODES; i++)); do echo "$(node_addr "$i") node$i"; done
    } >"$out/hosts"
}

# with_cluster_hosts CMD...: run CMD (exec) in a mount namespace of its own where /etc/hosts is this cluster's
# (render_configs); the daemon it starts stays there. The machine's /etc/hosts is never touched.
with_cluster_hosts() {
    unshare --mount --propagation private -- sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$ETC_DIR/hosts" "$@"
}

# ---------------------------------------------------------------- packages
ensure_packages() {   # ensure_packages [PACKAGE...] (default: $PACKAGES)
    local p missing=()
    for p in ${*:-$PACKAGES}; do
        if [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" != "ii " ]; then missing+=("$p"); fi
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing missing packages: ${missing[*]}"
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# temporary, created by slurmdag docker-slurm/up\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
            --no-install-recommends "${missing[@]}"
    } >"$SC_DIR/apt.log" 2>&1 || rc=$?
    ((made_policy)) && rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || { tail -n 20 "$SC_DIR/apt.log" >&2; die "apt-get failed (see $SC_DIR/apt.log)"; }
}

# ---------------------------------------------------------------- Slurm from source
# SLURM_VERSION other than 22.05: SchedMD's tarball from $SLURM_SOURCE_DIR is built once into $SC_PREFIX
# (/opt/slurmdag-slurm/<version>) and reused. The build happens in a staging tree that is moved into place only
# after `make install` succeeded and its stamp was written, so a half-finished build is never used.
SC_STAMP_NAME=.slurmdag-build
# --enable-multiple-slurmd: every node's slurmd shares this machine's one munged, which (since 23.x) otherwise
# rejects the second node's decode of a step's job credential as a replay (multi-node srun fails).
# CFLAGS=-O0 -g0: a test cluster needs no optimised or debuggable daemons, and compiling is what a fresh machine
# waits for (slurmctld's job_mgr.c: 8.3 s of CPU at Slurm's default -g -O2, 1.5 s at -O0 -g0).
SC_CONFIGURE_FLAGS="--disable-debug --enable-multiple-slurmd CFLAGS=-O0\ -g0"

source_dir() {   # $SLURM_SOURCE_DIR, else ../shared/vendor next to the checkout when it exists
    if [ -n "${SLURM_SOURCE_DIR:-}" ]; then echo "$SLURM_SOURCE_DIR"
    elif [ -d "$SC_HOME/../../shared/vendor" ]; then (cd "$SC_HOME/../../shared/vendor" && pwd)
    fi
}

find_tarball() {   # newest tarball of $SLURM_VERSION: git-archive names (slurm-24-11-7-1) or SchedMD's (slurm-24.11.7)
    local dir=$1 yy mm
    yy=$(printf '%02d' "$SC_YY"); mm=$(printf '%02d' "$SC_MM")
    [ -d "$dir" ] || return 0
    find "$dir" -maxdepth 1 \( -name "slurm-$yy-$mm-*.tar.*" -o -name "slurm-$yy.$mm.*.tar.*" \) -printf '%f\n' |
        sort -V | tail -n 1 | sed "s|^|$dir/|"
}

stamp_value() { sed -n "s/^$2=//p" "$1/$SC_STAMP_NAME" 2>/dev/null || true; }

# ensure_slurm_build : the prefix holds a finished build of the newest tarball found (or of an earlier one when no
# tarball is found any more); builds it otherwise. Prints what it did on stderr.
ensure_slurm_build() {
    [ -n "$SC_PREFIX" ] || return 0
    local dir tarball sha have
    dir=$(source_dir)
    tarball=$(find_tarball "$dir")
    have=$(stamp_value "$SC_PREFIX" sha256)
    if [ -z "$tarball" ]; then
        [ -n "$have" ] && return 0
        die "Slurm $SLURM_VERSION is not built yet and no source tarball for it was found in ${dir:-(SLURM_SOURCE_DIR unset)}: download SchedMD's slurm-$SLURM_VERSION.*.tar.bz2 there, or point SLURM_SOURCE_DIR at a folder holding it"
    fi
    sha=$(sha256sum "$tarball" | awk '{print $1}')
    [ "$have" = "$sha" ] && [ "$(stamp_value "$SC_PREFIX" configure)" = "$SC_CONFIGURE_FLAGS" ] && return 0
    mkdir -p "$SLURM_BUILD_CACHE"
    # one build per version at a time (two `up`s of the same version, e.g. parallel CI stages)
    local lockfd
    exec {lockfd}>"$SLURM_BUILD_CACHE/.$SLURM_VERSION.lock"
    flock -w 3600 "$lockfd" || die "could not lock $SLURM_BUILD_CACHE/.$SLURM_VERSION.lock within an hour"
    if [ "$(stamp_value "$SC_PREFIX" sha256)" != "$sha" ] ||
        [ "$(stamp_value "$SC_PREFIX" configure)" != "$SC_CONFIGURE_FLAGS" ]; then
        build_slurm "$tarball" "$sha"
    fi
    exec {lockfd}>&-
}

build_slurm() {   # build_slurm TARBALL SHA256
    local tarball=$1 sha=$2 t0 t work stage log
    work=$SLURM_BUILD_CACHE/.build-$SLURM_VERSION
    stage=$SLURM_BUILD_CACHE/.stage-$SLURM_VERSION
    log=$SLURM_BUILD_CACHE/$SLURM_VERSION.build.log
    ensure_packages $BUILD_PACKAGES
    log "building Slurm $SLURM_VERSION from $tarball into $SC_PREFIX (once; log: $log)"
    t0=$(now)
    rm -rf "$work" "$stage"
    mkdir -p "$work"
    : >"$log"
    step() {   # step WHAT CMD... : run in the source tree, log, time it
        local what=$1 ts; shift
        ts=$(now)
        (cd "$work" && "$@") >>"$log" 2>&1 9>&- || { tail -n 30 "$log" >&2; die "Slurm $SLURM_VERSION: $what failed (see $log)"; }
        log "  $what: $(elapsed "$ts")s"
    }
    step "unpack" tar -xf "$tarball" --strip-components=1
    eval "local flags=($SC_CONFIGURE_FLAGS)"   # words as the shell reads them (CFLAGS=-O0\ -g0 is one)
    step "configure" nice -n 19 ./configure --prefix="$SC_PREFIX" --sysconfdir="$SC_PREFIX/etc" "${flags[@]}"
    # nice: the machine is shared with other work (2 cores here); -j2 is what it has.
    step "make -j2" nice -n 19 make -j2
    step "make install" nice -n 19 make install DESTDIR="$stage"
    local p
    for p in auth_munge accounting_storage_slurmdbd accounting_storage_mysql select_cons_tres; do
        [ -e "$stage$SC_PREFIX/lib/slurm/$p.so" ] ||
            die "Slurm $SLURM_VERSION was built without $p (configure did not find munge or mysql_config?); see $log"
    done
    t=$(elapsed "$t0")
    printf 'version=%s\ntarball=%s\nsha256=%s\nconfigure=%s\nbuild_seconds=%s\nbuilt=%s\n' "$SLURM_VERSION" \
        "${tarball##*/}" "$sha" "$SC_CONFIGURE_FLAGS" "$t" "$(date -Is)" >"$stage$SC_PREFIX/$SC_STAMP_NAME"
    # Swap the finished tree in; an older build (other patch release) moves aside first and is then deleted.
    if [ -e "$SC_PREFIX" ]; then mv "$SC_PREFIX" "$SC_PREFIX.old.$$"; fi
    mv "$stage$SC_PREFIX" "$SC_PREFIX"
    rm -rf "$SC_PREFIX.old.$$" "$work" "$stage"
    log "built Slurm $("$SC_PREFIX/sbin/slurmctld" -V 2>/dev/null | awk '{print $2}') in ${t}s"
}

# ---------------------------------------------------------------- processes
# pid_alive PROG PIDFILE : prints the PID and succeeds when the PID file names a
# live process that is really PROG (checked via /proc/PID/exe or argv[0]).
pid_alive() {
    local prog=$1 file=$2 pid exe arg0
    [ -s "$file" ] || return 1
    pid=$(tr -dc '0-9' < "$file")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    arg0=$(tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | head -n1 || true)
    # a zombie has an empty cmdline and no exe: not alive for our purposes
    if [ "${exe##*/}" = "$prog" ] || [ "${exe##*/}" = "$prog (deleted)" ] || [ "${arg0##*/}" = "$prog" ]; then
        echo "$pid"; return 0
    fi
    return 1
}

wait_pid_gone() {   # wait_pid_gone PID TIMEOUT_S
    local pid=$1 deadline=$((${EPOCHSECONDS} + $2))
    while [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; do
        ((EPOCHSECONDS >= deadline)) && return 1
        sleep 0.05
    done
    return 0
}

# stop_daemon PROG PIDFILE [TIMEOUT_S] : SIGTERM, wait, SIGKILL. Prints PROG when it stopped something.
stop_daemon() {
    local prog=$1 file=$2 t=${3:-15} pid
    if pid=$(pid_alive "$prog" "$file"); then
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_pid_gone "$pid" "$t"; then
            log "$prog (pid $pid) did not exit after ${t}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            wait_pid_gone "$pid" 5 || log "warning: $prog (pid $pid) still present"
        fi
        rm -f "$file"
        echo "$prog"
    else
        rm -f "$file"
    fi
}

wait_for() {   # wait_for TIMEOUT_S DESCRIPTION CMD... : poll CMD until it succeeds
    local t=$1 what=$2; shift 2
    local deadline=$((EPOCHSECONDS + t))
    until "$@" >/dev/null 2>&1; do
        ((EPOCHSECONDS >= deadline)) && die "timed out after ${t}s waiting for $what (logs: $LOG_DIR)"
        sleep 0.1
    done
}

# ---------------------------------------------------------------- munge
munge_alive() { pid_alive munged "$PID_DIR/munged.pid" >/dev/null; }
start_munge() {
    munge_alive && return 1
    mkdir -p "$MUNGE_DIR"; chmod 755 "$MUNGE_DIR"
    if [ ! -s "$MUNGE_DIR/munge.key" ]; then
        mungekey --create --keyfile="$MUNGE_DIR/munge.key" 2>/dev/null ||
            dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
        chmod 400 "$MUNGE_DIR/munge.key"
    fi
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    munged --force --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key" \
        --pid-file="$PID_DIR/munged.pid" --log-file="$LOG_DIR/munged.log" \
        --seed-file="$MUNGE_DIR/munged.seed" </dev/null >>"$LOG_DIR/munged.log" 2>&1 9>&-
    wait_for 10 munged munge_alive
    return 0
}

# ---------------------------------------------------------------- network
net_ready_node() {
    local i=$1
    [ -e "/run/netns/$NS_PREFIX$i" ] && ip link show "$VETH_PREFIX$i" >/dev/null 2>&1
}

ensure_bridge() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
    fi
    local addrs; addrs=$(ip -o -4 addr show dev "$BRIDGE")   # (no `| grep -q` under pipefail: SIGPIPE)
    [[ $addrs == *" $CTLD_ADDR/"* ]] || ip addr add "$CTLD_ADDR/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    echo "$SC_DIR" > "$OWNER_MARK"
}

ensure_node_net() {   # returns 0 when it created something
    local i=$1 ns=$NS_PREFIX$1 h=$VETH_PREFIX$1 c=$VETH_PREFIX${1}c
    net_ready_node "$i" && return 1
    remove_node_net "$i"
    ip netns add "$ns"
    ip link add "$h" type veth peer name "$c"
    ip link set "$c" netns "$ns"
    ip link set "$h" master "$BRIDGE"
    ip link set "$h" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$(node_addr "$i")/24" dev "$c"
    ip -n "$ns" link set "$c" up
    return 0
}

ns_pids() {   # PIDs of processes living in a node's network namespace
    ip netns pids "$NS_PREFIX$1" 2>/dev/null || true
}

kill_ns_processes() {   # kill whatever still runs inside node i's namespace (job steps)
    local i=$1 pids p
    pids=$(ns_pids "$i")
    [ -z "$pids" ] && return 0
    kill -TERM $pids 2>/dev/null || true
    for p in $pids; do wait_pid_gone "$p" 5 || kill -KILL "$p" 2>/dev/null || true; done
}

remove_node_net() {
    local i=$1
    if [ -e "/run/netns/$NS_PREFIX$i" ]; then
        kill_ns_processes "$i"
        ip netns del "$NS_PREFIX$i" 2>/dev/null || true
    fi
    ip link del "$VETH_PREFIX$i" 2>/dev/null || true
}

# ---------------------------------------------------------------- database
db_alive() { pid_alive mariadbd "$PID_DIR/mariadbd.pid" >/dev/null; }
db_ping() { mariadb-admin --no-defaults --socket="$DB_SOCKET" --user=root ping >/dev/null 2>&1; }
start_db() {
    db_alive && return 1
    # A tmpdir of its own: clusters set up at the same moment (CI's version lanes) shared /tmp, and their MariaDB
    # temporary tables there collided ("Could not remove temporary table '/tmp/#sql-temptable-...'": install failed)
    mkdir -p "$DB_DIR/tmp"
    if [ ! -d "$DB_DIR/data/mysql" ]; then
        rm -rf "$DB_DIR/data"  # what a failed install left behind
        mariadb-install-db --no-defaults --datadir="$DB_DIR/data" --tmpdir="$DB_DIR/tmp" --user=root \
            --auth-root-authentication-method=socket --skip-test-db \
            >>"$LOG_DIR/mariadb-install.log" 2>&1 9>&- || die "mariadb-install-db failed (see $LOG_DIR/mariadb-install.log)"
    fi
    setsid -f mariadbd --no-defaults --datadir="$DB_DIR/data" --tmpdir="$DB_DIR/tmp" --socket="$DB_SOCKET" \
        --pid-file="$PID_DIR/mariadbd.pid" --skip-networking --user=root \
        --log-error="$LOG_DIR/mariadb.log" --innodb-lock-wait-timeout=900 \
        </dev/null >>"$LOG_DIR/mariadb.log" 2>&1 9>&-
    wait_for 30 "mariadbd to answer" db_ping
    return 0
}

dbd_alive() { pid_alive slurmdbd "$PID_DIR/slurmdbd.pid" >/dev/null; }
dbd_answers() { sacctmgr -n -P list cluster format=Cluster >/dev/null 2>&1; }
start_dbd() {
    dbd_alive && return 1
    MYSQL_UNIX_PORT=$DB_SOCKET slurmdbd </dev/null >>"$LOG_DIR/slurmdbd.out" 2>&1 9>&-
    wait_for 30 "slurmdbd to answer" dbd_answers
    local clusters; clusters=$(sacctmgr -n -P list cluster format=Cluster 2>/dev/null) || true
    if ! grep -qx "$CLUSTER_NAME" <<<"$clusters"; then
        sacctmgr -i add cluster "$CLUSTER_NAME" >/dev/null
    fi
    return 0
}

# ---------------------------------------------------------------- slurm daemons
ctld_alive() { pid_alive slurmctld "$PID_DIR/slurmctld.pid" >/dev/null; }
ctld_up() { local out; out=$(scontrol ping 2>/dev/null) || true; [[ $out == *"is UP"* ]]; }
start_ctld() {
    ctld_alive && return 1
    mkdir -p "$STATE_DIR"
    with_cluster_hosts slurmctld -f "$SLURM_CONF" </dev/null >>"$LOG_DIR/slurmctld.out" 2>&1 9>&-
    wait_for 30 "slurmctld to answer" ctld_up
    return 0
}
stop_ctld() { stop_daemon slurmctld "$PID_DIR/slurmctld.pid" 20; }

slurmd_alive() { pid_alive slurmd "$PID_DIR/slurmd-node$1.pid" >/dev/null; }
start_slurmd() {
    local i=$1
    slurmd_alive "$i" && return 1
    mkdir -p "$SPOOL_DIR/node$i"
    nsenter --net="/run/netns/$NS_PREFIX$i" unshare --uts --mount --propagation private -- \
        sh -c 'hostname "$1"; mount --bind "$3" /etc/hosts && exec slurmd -f "$2" -N "$1"' sh "node$i" "$SLURM_CONF" \
        "$ETC_DIR/hosts" \
        </dev/null >>"$LOG_DIR/slurmd-node$i.out" 2>&1 9>&-
    wait_for 15 "slurmd on node$i" slurmd_alive "$i"
    return 0
}
stop_slurmd() { stop_daemon slurmd "$PID_DIR/slurmd-node$1.pid" 15; }

nodes_ready() {   # nodes_ready N : every node1..N is up (idle/mix/alloc/comp, responding)
    local n=$1 out count
    out=$(sinfo -h -N -o '%N %t' 2>/dev/null) || return 1
    count=$(awk -v n="$n" '
        { name=$1; st=$2; sub(/^node/, "", name) }
        name ~ /^[0-9]+$/ && name+0 >= 1 && name+0 <= n && st ~ /^(idle|mix|mixed|alloc|allocated|comp|completing)$/ { ok[name]=1 }
        END { c=0; for (k in ok) c++; print c }' <<<"$out")
    [ "$count" = "$n" ]
}

# remove_cluster_network : every node namespace, veth and the bridge, and the owner mark; prints how many
# namespaces/bridges it removed.
remove_cluster_network() {
    local ns l removed=0
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$NS_PREFIX[0-9][0-9]*$" || true); do
        remove_node_net "${ns#"$NS_PREFIX"}" >&2; removed=$((removed + 1))
    done
    for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep "^$VETH_PREFIX[0-9][0-9]*$" || true); do
        ip link del "$l" 2>/dev/null || true
    done
    if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; removed=$((removed + 1)); fi
    rm -f "$OWNER_MARK"
    echo "$removed"
}

sacct_answers() { sacct -n -X -S now -o JobID >/dev/null 2>&1; }

# ---------------------------------------------------------------- locking
# fd 9 holds the lock; every daemon is started with 9>&- so none inherits it.
take_lock() {
    exec 9>"$SC_DIR/up.lock"
    flock -w 300 9 || die "could not lock $SC_DIR/up.lock within 300s (another up/down/reset running?)"
}

# every recorded daemon as "prog pidfile" lines
daemon_table() {
    local f n
    echo "munged $PID_DIR/munged.pid"
    echo "mariadbd $PID_DIR/mariadbd.pid"
    echo "slurmdbd $PID_DIR/slurmdbd.pid"
    echo "slurmctld $PID_DIR/slurmctld.pid"
    for f in "$PID_DIR"/slurmd-node*.pid; do
        [ -e "$f" ] || continue
        echo "slurmd $f"
    done
}
