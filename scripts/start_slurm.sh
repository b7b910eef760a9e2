#!/usr/bin/env bash
# Start a single-node SLURM (munge + slurmctld + slurmd) on this machine, idempotently.
#
# Used by CI and by tests/sweep (session fixture) so that memwh sweeps are tested against a
# real controller, not a mock. Needs root on Debian/Ubuntu: installs the Debian packages
# `slurmctld slurmd slurm-client munge` when missing, creates the munge key, writes
# /etc/slurm/slurm.conf (one node = this machine, CPUs=$(nproc), one default partition),
# starts the daemons without systemd and waits until `sinfo` shows the node idle.
# Running it again when the cluster is up changes nothing. Prints one summary line;
# on failure prints the reason (and the daemon log tail) on stderr and exits non-zero.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
LOG_DIR=/var/log/slurm
CTLD_LOG=$LOG_DIR/slurmctld.log
SLURMD_LOG=$LOG_DIR/slurmd.log
PARTITION=${MEMWH_SLURM_PARTITION:-debug}
WAIT_SECONDS=${MEMWH_SLURM_WAIT:-60}

die() {
    echo "start_slurm.sh: $*" >&2
    for f in "$CTLD_LOG" "$SLURMD_LOG"; do
        if [ -f "$f" ]; then
            echo "--- last lines of $f" >&2
            tail -n 15 "$f" >&2
        fi
    done
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, starts daemons)"

# 1. Packages (only when a binary is missing; ~15 s from the Debian mirror).
need_install=0
for bin in slurmctld slurmd sbatch munged; do
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need_install=1
done
if [ "$need_install" -eq 1 ]; then
    command -v apt-get >/dev/null 2>&1 || die "slurm is not installed and apt-get is unavailable"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
        || die "apt-get install slurmctld slurmd slurm-client munge failed"
fi
export PATH="/usr/sbin:/sbin:$PATH"

# 2. Munge: key (1024 random bytes, owner munge, mode 400) + daemon running as munge.
id munge >/dev/null 2>&1 || die "user 'munge' missing (the munge package creates it)"
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
chmod 700 /etc/munge
chmod 400 /etc/munge/munge.key
chmod 755 /run/munge
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- munged --force || die "munged failed to start"
    for _ in $(seq 1 50); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    munge -n </dev/null | unmunge >/dev/null 2>&1 || die "munge credentials do not round-trip"
fi

# 3. slurm.conf for this one machine.
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
mkdir -p /etc/slurm "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
tmp_conf=$(mktemp)
cat >"$tmp_conf" <<EOF
# Written by memwh scripts/start_slurm.sh: single-node SLURM for tests and local use.
ClusterName=memwh
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmdParameters=config_overrides
ReturnToService=2
MaxArraySize=1001
KillWait=10
MinJobAge=300
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$CTLD_LOG
SlurmdLogFile=$SLURMD_LOG
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

conf_changed=0
if ! cmp -s "$tmp_conf" "$CONF"; then
    conf_changed=1
    install -m 644 "$tmp_conf" "$CONF"
fi
rm -f "$tmp_conf"

# A changed config needs fresh daemons: stop the ones started from the old config (by pid file).
if [ "$conf_changed" -eq 1 ]; then
    for pf in /run/slurmd.pid /run/slurmctld.pid; do
        if pid_alive "$pf"; then
            kill "$(cat "$pf")" 2>/dev/null || true
            for _ in $(seq 1 50); do pid_alive "$pf" || break; sleep 0.1; done
        fi
    done
fi

# 4. Daemons.
if ! pid_alive /run/slurmctld.pid; then
    slurmctld || die "slurmctld failed to start"
fi
if ! pid_alive /run/slurmd.pid; then
    slurmd || die "slurmd failed to start"
fi

# 5. Wait until the node is idle (resume it if an earlier run left it down/drained).
state=""
for i in $(seq 1 $((WAIT_SECONDS * 2))); do
    state=$(sinfo -h -n "$HOST" -o '%T' 2>/dev/null | head -n1 || true)
    case "$state" in
        idle|mixed|allocated|completing) break ;;
        down*|drain*|fail*)
            [ $((i % 4)) -eq 0 ] && scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
case "$state" in
    idle|mixed|allocated|completing) ;;
    *) die "node $HOST not ready after ${WAIT_SECONDS}s (sinfo state: '${state:-no answer}')" ;;
esac

echo "slurm ready: node $HOST ($CPUS CPUs, ${MEM_MB} MB) state $state, partition $PARTITION, $(sinfo -V)"
