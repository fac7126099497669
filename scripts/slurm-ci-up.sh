#!/bin/bash
# Start a throw-away single-node Slurm cluster (munged + slurmctld + slurmd) without systemd,
# for make test-jobs (from the team recipe in shared/reference/slurm).
# Usage: BASE=/tmp/nasd-slurm ./slurm-ci-up.sh ; then: export SLURM_CONF=$BASE/etc/slurm.conf
set -euo pipefail
BASE=${BASE:-/tmp/nasd-slurm}
HOST=$(hostname -s)            # must equal what slurmd thinks its name is
CPUS=${SLURM_CI_CPUS:-8}       # advertised CPUs (may exceed real ones thanks to config_overrides)
CTLD_PORT=${SLURM_CI_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_CI_SLURMD_PORT:-6818}
LIB=/usr/lib/x86_64-linux-gnu/slurm-wlm

mkdir -p "$BASE"/{etc,munge,spool/ctld,spool/d,log,run,tmp}
rm -rf "$BASE"/spool/ctld/* "$BASE"/spool/d/*     # fresh state: no stale DRAIN/INVAL, no old jobs
chmod 755 "$BASE/munge"                          # munged: socket dir must be o+x
if [ ! -s "$BASE/munge/munge.key" ]; then
  mungekey --create --keyfile="$BASE/munge/munge.key" --bits=1024   # or: dd if=/dev/urandom of=... bs=1024 count=1
fi
chmod 600 "$BASE/munge/munge.key"

cat > "$BASE/etc/slurm.conf" <<EOF
ClusterName=ci
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${CTLD_PORT}
SlurmdPort=${SLURMD_PORT}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${BASE}/munge/munge.socket.2
StateSaveLocation=${BASE}/spool/ctld
SlurmdSpoolDir=${BASE}/spool/d
SlurmctldPidFile=${BASE}/run/slurmctld.pid
SlurmdPidFile=${BASE}/run/slurmd.pid
SlurmctldLogFile=${BASE}/log/slurmctld.log
SlurmdLogFile=${BASE}/log/slurmd.log
TmpFS=${BASE}/tmp
PlugStackConfig=${BASE}/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
DependencyParameters=kill_invalid_depend
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
InactiveLimit=0
KillWait=5
Waittime=0
MinJobAge=300
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} Sockets=1 CoresPerSocket=${CPUS} ThreadsPerCore=1 RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
# PBS_* variables (PBS_JOBID, PBS_O_WORKDIR, ...) for qsub-style scripts
echo "optional ${LIB}/spank_pbs.so" > "$BASE/etc/plugstack.conf"

export SLURM_CONF="$BASE/etc/slurm.conf"
SOCK="$BASE/munge/munge.socket.2"
munged --socket="$SOCK" --key-file="$BASE/munge/munge.key" --log-file="$BASE/log/munged.log" \
       --pid-file="$BASE/munge/munged.pid" --seed-file="$BASE/munge/munged.seed"
for i in $(seq 1 50); do munge -n -S "$SOCK" >/dev/null 2>&1 && break; sleep 0.1; done
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for i in $(seq 1 300); do
  [ "$(sinfo -h -n "$HOST" -o %T 2>/dev/null)" = idle ] && { echo "slurm ready"; exit 0; }
  sleep 0.2
done
echo "slurm did not become ready" >&2; sinfo -N -l >&2 || true; tail -20 "$BASE"/log/*.log >&2; exit 1
