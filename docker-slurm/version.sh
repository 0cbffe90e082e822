# shellcheck shell=bash
# Which Slurm the test cluster runs, and every name derived from it. Sourced by lib.sh and env; sets variables only.
#
# SLURM_VERSION=22.05 (default) is Debian 12's packages and keeps the original names (run dir docker-slurm/run,
# bridge sdagbr0, 10.77.0.0/24, ports 6817-6819). Any other MAJOR.MINOR (24.11, 25.11, 26.05) runs from a prefix
# built once from SchedMD's source tarball (lib.sh: ensure_slurm_build) and gets names of its own, so clusters of
# different versions run side by side on one machine.

SLURM_VERSION=${SLURM_VERSION:-22.05}
if [[ ! $SLURM_VERSION =~ ^([0-9][0-9])\.([0-9][0-9])$ ]]; then
    printf 'docker-slurm: error: SLURM_VERSION must be MAJOR.MINOR such as 22.05, 24.11, 25.11, 26.05 (got %s)\n' \
        "$SLURM_VERSION" >&2
    exit 2
fi
SC_YY=$((10#${BASH_REMATCH[1]}))
SC_MM=$((10#${BASH_REMATCH[2]}))

if [ "$SLURM_VERSION" = 22.05 ]; then
    SC_DEFAULT_RUN_DIR=$SC_HOME/run
    SC_PREFIX=""                               # Debian's packages, already on PATH
    BRIDGE=sdagbr0
    NS_PREFIX=sdag-node                        # namespaces sdag-node1..N
    VETH_PREFIX=sdag-v                         # host side sdag-vN, node side sdag-vNc
    SUBNET_PREFIX=10.77.0
    OWNER_MARK=/run/slurmdag-test-cluster.dir  # which run dir owns the bridge
    SC_CTLD_PORT=6817
    SC_SLURMD_PORT=6818
    SC_DBD_PORT=6819
else
    SC_TAG=$(printf '%02d%02d' "$SC_YY" "$SC_MM")   # 24.11 -> 2411
    SC_DEFAULT_RUN_DIR=$SC_HOME/run-$SLURM_VERSION
    SLURM_BUILD_CACHE=${SLURM_BUILD_CACHE:-/opt/slurmdag-slurm}
    SC_PREFIX=$SLURM_BUILD_CACHE/$SLURM_VERSION
    BRIDGE=sdagbr$SC_TAG                       # interface names stay under 15 characters
    NS_PREFIX=sdag$SC_TAG-node
    VETH_PREFIX=sdag${SC_TAG}v
    SUBNET_PREFIX=10.77.$(((SC_YY * 12 + SC_MM) % 256))   # 24.11 -> 10.77.43, 25.11 -> .55, 26.05 -> .61
    OWNER_MARK=/run/slurmdag-test-cluster-$SLURM_VERSION.dir
    SC_CTLD_PORT=$((20000 + SC_YY * 100 + SC_MM))        # 24.11 -> 22411 (slurmctld), 22412 (slurmd), 22413 (slurmdbd)
    SC_SLURMD_PORT=$((SC_CTLD_PORT + 1))
    SC_DBD_PORT=$((SC_CTLD_PORT + 2))
fi

# SLURM_CLUSTER_INSTANCE=1..9 runs another cluster of the same version beside the default one (instance 0): its own
# run dir, bridge, namespaces, subnet, ports and owner mark. CI splits the 22.05 suite over two instances, and a test
# that restarts its cluster with other knobs can run on an instance of its own while other tests use the default.
SC_INSTANCE=${SLURM_CLUSTER_INSTANCE:-0}
if [[ ! $SC_INSTANCE =~ ^[0-9]$ ]]; then
    printf 'docker-slurm: error: SLURM_CLUSTER_INSTANCE must be one digit, 0 (the default cluster) to 9 (got %s)\n' \
        "$SC_INSTANCE" >&2
    exit 2
fi
if [ "$SC_INSTANCE" != 0 ]; then
    SC_DEFAULT_RUN_DIR=$SC_DEFAULT_RUN_DIR-i$SC_INSTANCE
    BRIDGE=${BRIDGE}i$SC_INSTANCE               # sdagbr2411i1: 12 characters
    NS_PREFIX=${NS_PREFIX%-node}i$SC_INSTANCE-node
    VETH_PREFIX=${VETH_PREFIX%v}i${SC_INSTANCE}v  # sdag2411i1v3c: 13 characters
    # 10.91-10.99: clear of the default clusters (10.77), the compose cluster (10.78) and Podman's own (10.88)
    SUBNET_PREFIX=10.$((90 + SC_INSTANCE)).${SUBNET_PREFIX##*.}
    OWNER_MARK=${OWNER_MARK%.dir}-i$SC_INSTANCE.dir
    SC_CTLD_PORT=$((SC_CTLD_PORT + 10 * SC_INSTANCE))
    SC_SLURMD_PORT=$((SC_SLURMD_PORT + 10 * SC_INSTANCE))
    SC_DBD_PORT=$((SC_DBD_PORT + 10 * SC_INSTANCE))
fi
