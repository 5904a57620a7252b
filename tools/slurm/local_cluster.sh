#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, from the distribution's packages (Debian/Ubuntu: slurm-wlm,
# munge), without an init system: munged, slurmctld and slurmd are started directly as daemons. Everything
# SLURM keeps (config, state, spool, logs, pid files) lives under DIR; only munged uses its system paths.
#
#   tools/slurm/local_cluster.sh install          apt-get update && apt-get install -y slurm-wlm munge (root)
#   tools/slurm/local_cluster.sh start DIR        write DIR/slurm.conf, start the daemons, wait until the node
#                                                 is idle (a cluster already running from DIR is left as is)
#   tools/slurm/local_cluster.sh start DIR --install   the same, installing the packages first if missing
#   tools/slurm/local_cluster.sh status DIR       sinfo of the cluster in DIR (exit 1 if it is not up)
#   tools/slurm/local_cluster.sh stop DIR         stop slurmd and slurmctld (and munged if start started it
#                                                 and no other slurmctld/slurmd runs)
#   tools/slurm/local_cluster.sh env DIR          print `export SLURM_CONF=DIR/slurm.conf`
#
# Client commands (sbatch, squeue, scancel, sinfo, and so `severe benchmark --launcher slurm`) find the
# cluster through SLURM_CONF:  eval "$(tools/slurm/local_cluster.sh env DIR)".
# start and stop must run as root (slurmd starts jobs as their owner). Ports: $SEVERE_SLURMCTLD_PORT (default 6817) and
# $SEVERE_SLURMD_PORT (6818); $SEVERE_SLURM_TIMEOUT seconds to wait for the node (default 60).
set -euo pipefail

CTLD_PORT=${SEVERE_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${SEVERE_SLURMD_PORT:-6818}
TIMEOUT=${SEVERE_SLURM_TIMEOUT:-60}
PATH=$PATH:/usr/sbin:/sbin

die() { echo "local_cluster.sh: $*" >&2; exit 1; }
usage() { sed -n '6,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

installed() { command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
              && command -v sinfo >/dev/null; }

install_packages() {
    [ "$(id -u)" = 0 ] || die "installing needs root: apt-get update && apt-get install -y slurm-wlm munge"
    command -v apt-get >/dev/null || die "no apt-get here: install SLURM (slurmctld, slurmd, client commands) and munge with your distribution's package manager"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y slurm-wlm munge
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }  # pid file -> is its process running?

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    munge_ok && return 0
    [ -s /etc/munge/munge.key ] || die "/etc/munge/munge.key is missing: create it with mungekey (or reinstall munge)"
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 0755 /run/munge
    if id munge >/dev/null 2>&1; then runuser -u munge -- munged; else munged --force; fi
    touch "$DIR/munged.started"
    for _ in $(seq 1 50); do munge_ok && return 0; sleep 0.2; done
    die "munged did not come up (see /var/log/munge/munged.log)"
}

write_conf() {
    local host node tmp
    host=$(hostname -s)
    # this host's real CPU layout and memory, as slurmd detects them
    node=$(slurmd -C | head -n 1)
    case "$node" in NodeName=*) ;; *) die "slurmd -C printed no node line: $node";; esac
    tmp=$(mktemp "$DIR/slurm.conf.XXXXXX")
    cat >"$tmp" <<EOF
# written by tools/slurm/local_cluster.sh: one node (this host), one partition, no accounting
ClusterName=severe-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# seconds between SIGTERM and SIGKILL on scancel or time-out (submitit's jobs ignore SIGTERM)
KillWait=5
# finished jobs stay visible to squeue/scontrol for this many seconds
MinJobAge=600
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    chmod 0644 "$tmp"
    mv -f "$tmp" "$DIR/slurm.conf"
}

node_state() { SLURM_CONF="$DIR/slurm.conf" sinfo -h -N -o %t 2>/dev/null | head -n 1; }

controller_state_dir() {  # StateSaveLocation of the slurmctld answering on our port
    SLURM_CONF="$DIR/slurm.conf" scontrol show config 2>/dev/null | sed -n 's/^StateSaveLocation *= *//p'
}

wait_idle() {
    local state="" theirs
    for _ in $(seq 1 $((TIMEOUT * 2))); do
        state=$(node_state || true)
        case "$state" in
            idle|mix|alloc|comp)  # up (mix/alloc/comp: a running cluster already has jobs)
                theirs=$(controller_state_dir)
                [ "$theirs" = "$DIR/state" ] || die "port $CTLD_PORT answers for another cluster (state in $theirs): stop it or set SEVERE_SLURMCTLD_PORT"
                sleep 0.5  # a slurmd that could not bind its port exits right after starting
                alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && return 0
                break;;
        esac
        alive "$DIR/slurmctld.pid" || break
        sleep 0.5
    done
    local up=()
    for d in slurmctld slurmd; do alive "$DIR/$d.pid" && up+=("$d running") || up+=("$d not running"); done
    echo "local_cluster.sh: the node did not come up within ${TIMEOUT}s (state: ${state:-no answer}; ${up[0]}, ${up[1]})" >&2
    for f in "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log"; do
        [ -f "$f" ] && { echo "--- tail $f" >&2; tail -n 15 "$f" >&2; }
    done
    exit 1
}

start() {
    [ "$(id -u)" = 0 ] || die "start needs root (slurmd runs jobs as their owner)"
    if ! installed; then
        [ "${1:-}" = "--install" ] || die "SLURM is not installed: run '$0 install' (apt-get install -y slurm-wlm munge) or pass --install"
        install_packages
    fi
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    start_munge
    if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid"; then
        wait_idle
        echo "SLURM already running from $DIR"
        echo "export SLURM_CONF=$DIR/slurm.conf"
        return 0
    fi
    write_conf
    alive "$DIR/slurmctld.pid" || slurmctld -f "$DIR/slurm.conf"
    alive "$DIR/slurmd.pid" || slurmd -f "$DIR/slurm.conf"
    wait_idle
    echo "SLURM running from $DIR: $(SLURM_CONF="$DIR/slurm.conf" sinfo -h -o '%P %D node(s) %c CPUs %m MB %t')"
    echo "export SLURM_CONF=$DIR/slurm.conf"
}

stop_daemon() {  # pid file, name
    alive "$1" || { rm -f "$1"; return 0; }
    local pid
    pid=$(cat "$1")
    kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || { rm -f "$1"; return 0; }; sleep 0.25; done
    echo "local_cluster.sh: $2 (pid $pid) did not stop on SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$1"
}

stop() {
    stop_daemon "$DIR/slurmd.pid" slurmd
    stop_daemon "$DIR/slurmctld.pid" slurmctld
    if [ -f "$DIR/munged.started" ]; then  # munged only if start started it and no other cluster still needs it
        pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || munged --stop >/dev/null 2>&1 || true
        rm -f "$DIR/munged.started"
    fi
    echo "SLURM in $DIR stopped"
}

status() {
    [ -f "$DIR/slurm.conf" ] || die "no cluster in $DIR (no slurm.conf)"
    SLURM_CONF="$DIR/slurm.conf" sinfo || exit 1
    alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid"
}

cmd=${1:-}
[ -n "$cmd" ] || usage
if [ "$cmd" = install ]; then install_packages; exit 0; fi
[ $# -ge 2 ] || usage
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
shift 2
case "$cmd" in
    start) start "$@";;
    stop) stop;;
    status) status;;
    env) echo "export SLURM_CONF=$DIR/slurm.conf";;
    *) usage;;
esac
