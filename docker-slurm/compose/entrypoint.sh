#!/bin/bash
# Entrypoint of the slurmdag compose cluster image. Role = first argument: slurmctld | slurmdbd | slurmd.
# Expects the rendered configuration (slurm.conf, slurmdbd.conf, plugstack.conf) in /etc/slurm-rendered (read-only
# bind mount); copies it to /etc/slurm with the owner and modes the daemons insist on.
set -euo pipefail
role=${1:-slurmd}
log() { echo "entrypoint[$role]: $*"; }

install -d -m 0755 /etc/slurm
for f in /etc/slurm-rendered/*; do install -m 0644 "$f" /etc/slurm/; done
[ ! -f /etc/slurm/slurmdbd.conf ] || chmod 0600 /etc/slurm/slurmdbd.conf
install -d -m 0755 /var/log/slurm /run/slurm /var/lib/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd

# munged: its socket directory may be a bind mount from the host (the controller exposes its socket that way).
install -d -o munge -g munge -m 0755 /run/munge
chown munge:munge /run/munge
rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock /run/munge/munged.pid
runuser -u munge -- /usr/sbin/munged
for _ in $(seq 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
[ -S /run/munge/munge.socket.2 ] || { log "munged did not start"; exit 1; }

case "$role" in
slurmctld)
    # On its first start slurmctld needs slurmdbd (else: "fatal: ... we have no TRES from it"): wait for it,
    # then register the cluster in the accounting database (a no-op when it is already there).
    dbd_host=$(sed -n 's/^AccountingStorageHost=//p' /etc/slurm/slurm.conf)
    dbd_port=$(sed -n 's/^AccountingStoragePort=//p' /etc/slurm/slurm.conf)
    cluster=$(sed -n 's/^ClusterName=//p' /etc/slurm/slurm.conf)
    if [ -n "$dbd_host" ]; then
        for _ in $(seq 600); do (exec 3<>"/dev/tcp/$dbd_host/${dbd_port:-6819}") 2>/dev/null && break; sleep 0.2; done
        if sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx "$cluster"; then :; else
            sacctmgr -i add cluster "$cluster" >/dev/null || log "could not register cluster $cluster"
        fi
    fi
    log "starting slurmctld"
    exec /usr/sbin/slurmctld -D -i
    ;;
slurmdbd)
    # MariaDB lives in this container, reachable only through its unix socket.
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql --auth-root-authentication-method=socket >/dev/null
    fi
    runuser -u mysql -- /usr/sbin/mariadbd --skip-networking --datadir=/var/lib/mysql \
        --socket=/run/mysqld/mysqld.sock --innodb-buffer-pool-size=64M &
    for _ in $(seq 300); do mariadb-admin --socket=/run/mysqld/mysqld.sock ping >/dev/null 2>&1 && break; sleep 0.1; done
    mariadb-admin --socket=/run/mysqld/mysqld.sock ping >/dev/null || { log "MariaDB did not start"; exit 1; }
    log "MariaDB ready; starting slurmdbd"
    exec /usr/sbin/slurmdbd -D
    ;;
slurmd)
    log "starting slurmd as $(hostname)"
    exec /usr/sbin/slurmd -D -N "$(hostname)"
    ;;
*)
    exec "$@"
    ;;
esac
