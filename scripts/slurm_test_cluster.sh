#!/usr/bin/env bash
# A one-node SLURM cluster for tests: munged, slurmctld, slurmd and, with accounting, slurmdbd + MariaDB.
#
#   bash scripts/slurm_test_cluster.sh start [--accounting|--no-accounting]
#   bash scripts/slurm_test_cluster.sh status     # exit 0 when the node is idle and the daemons run
#   bash scripts/slurm_test_cluster.sh stop       # stops exactly the daemons this script started
#   bash scripts/slurm_test_cluster.sh env        # prints `export SLURM_CONF=...` for clients
#
# Needs root and apt (Debian's slurmctld/slurmd/slurm-client/munge, and slurmdbd/mariadb-server for
# accounting; installed when missing). Everything else lives in $MOE_SLURM_DIR (default
# /tmp/moe-slurm): configs, munge key and socket, database, spool, logs, and the pid of every daemon
# started. There is no systemd and no cgroup here: the daemons run in the foreground, in the
# background, with proctrack/linuxproc and task/none; memory is enforced by jobacct_gather
# (OverMemoryKill), so a job over its --mem ends OUT_OF_MEMORY as on a real cluster.
# The node gets every CPU and 90% of the memory of this machine, one fake GPU (Gres=gpu:fake:1 on
# /dev/null), and two partitions: cpu (default) and gpu. Accounting creates the account `moe` with
# root in it. Clients need SLURM_CONF (see `env`), except inside jobs: the executor's job step drops
# SLURM_* variables before its srun, so /etc/slurm/slurm.conf links to the config while the cluster
# runs (only where that file does not exist; `stop` removes the link).
set -euo pipefail

DIR="${MOE_SLURM_DIR:-/tmp/moe-slurm}"
CLUSTER=moetest
ACCOUNT=moe
DB_PORT="${MOE_SLURM_DB_PORT:-3307}"
NODE="$(hostname -s)"
CONF="$DIR/etc/slurm.conf"
SYSTEM_CONF=/etc/slurm/slurm.conf
export SLURM_CONF="$CONF"

log() { echo "[slurm_test_cluster] $*" >&2; }
die() { log "error: $*"; exit 1; }

install_packages() {
  local pkgs=(slurmctld slurmd slurm-client munge) missing=()
  [[ "$1" == accounting ]] && pkgs+=(slurmdbd mariadb-server)
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  [[ $EUID -eq 0 ]] || die "missing ${missing[*]}; run as root to install them"
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # no daemon may start from the package scripts: this script starts its own
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" > "$DIR/log/apt.log" 2>&1; then
    apt-get update -q >> "$DIR/log/apt.log" 2>&1
    apt-get install -y -q --no-install-recommends "${missing[@]}" >> "$DIR/log/apt.log" 2>&1 \
      || { tail -20 "$DIR/log/apt.log" >&2; rm -f /usr/sbin/policy-rc.d; die "apt-get install failed"; }
  fi
  rm -f /usr/sbin/policy-rc.d
}

# start NAME CMD...: run a daemon in the foreground, in the background, in its own session
start_daemon() {
  local name=$1
  shift
  setsid "$@" > "$DIR/log/$name.out" 2>&1 < /dev/null &
  echo $! > "$DIR/pids/$name"
}

alive() {  # alive NAME: the recorded pid runs and is still that daemon (pids get reused)
  local pid
  pid=$(cat "$DIR/pids/$1" 2>/dev/null) || return 1
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "$1"
}

wait_for() {  # wait_for WHAT SECONDS CMD...
  local what=$1 limit=$2 t=0
  shift 2
  # every try is bounded: a client talking to a daemon that is not up yet can block for minutes
  local try=("$@")
  declare -F "$1" > /dev/null || try=(timeout 10 "$@")
  until "${try[@]}" > /dev/null 2>&1; do
    ((t++ < limit * 4)) || { log "$what not ready after ${limit}s; logs in $DIR/log"; return 1; }
    sleep 0.25
  done
}

write_configs() {
  local mode=$1 cpus mem
  cpus=$(nproc)
  mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10))
  local storage="AccountingStorageType=accounting_storage/none"
  if [[ $mode == accounting ]]; then
    storage="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePass=$DIR/munge/munge.socket
AccountingStorageEnforce=associations"
  fi
  cat > "$CONF" <<EOF
# written by scripts/slurm_test_cluster.sh ($mode)
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=300
$storage
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:fake:1 State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=120 DefaultTime=60 DefMemPerCPU=500 State=UP
PartitionName=gpu Nodes=$NODE MaxTime=120 DefaultTime=60 DefMemPerCPU=500 State=UP
EOF
  cat > "$DIR/etc/gres.conf" <<EOF
AutoDetect=off
NodeName=$NODE Name=gpu Type=fake File=/dev/null
EOF
  if [[ $mode == accounting ]]; then
    cat > "$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
DbdHost=localhost
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$DIR/etc/slurmdbd.conf"
  fi
  echo "$mode" > "$DIR/mode"
}

start_munge() {
  [[ -f $DIR/munge/munge.key ]] || { head -c 1024 /dev/urandom > "$DIR/munge/munge.key"; chmod 400 "$DIR/munge/munge.key"; }
  start_daemon munged munged --foreground --force --key-file="$DIR/munge/munge.key" \
    --socket="$DIR/munge/munge.socket" --pid-file="$DIR/run/munged.pid" \
    --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
  wait_for munged 20 test -S "$DIR/munge/munge.socket"
}

start_database() {
  local db="$DIR/mysql" sock="$DIR/run/mysqld.sock"
  if [[ ! -d $db/mysql ]]; then
    mariadb-install-db --no-defaults --user=root --datadir="$db" --auth-root-authentication-method=socket \
      --skip-test-db > "$DIR/log/mariadb-install.log" 2>&1 || { tail "$DIR/log/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
  fi
  start_daemon mariadbd mariadbd --no-defaults --user=root --datadir="$db" --socket="$sock" \
    --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$DIR/run/mariadbd.pid" \
    --log-error="$DIR/log/mariadbd.log" --innodb-buffer-pool-size=64M --skip-log-bin
  wait_for mariadbd 60 mariadb-admin --no-defaults --socket="$sock" ping
  mariadb --no-defaults --socket="$sock" -uroot <<EOF
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
  start_daemon slurmdbd slurmdbd -D
  wait_for slurmdbd 60 sacctmgr -n list cluster
  sacctmgr -i add cluster "$CLUSTER" > /dev/null 2>&1 || true
}

add_account() {
  sacctmgr -n -P list account "$ACCOUNT" format=account | grep -qx "$ACCOUNT" \
    || sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description=tests > /dev/null
  sacctmgr -n -P list user root format=defaultaccount | grep -qx "$ACCOUNT" \
    || sacctmgr -i add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT" > /dev/null
}

label() { if [[ $1 == accounting ]]; then echo "with accounting (slurmdbd)"; else echo "without accounting"; fi; }

node_idle() { [[ "$(sinfo -h -n "$NODE" -o %T 2>/dev/null | sort -u)" == idle ]]; }

cmd_start() {
  local mode=accounting t0=$SECONDS
  case "${1:-}" in
    "" | --accounting) ;;
    --no-accounting) mode=none ;;
    *) die "unknown option $1 (use --accounting or --no-accounting)" ;;
  esac
  [[ $EUID -eq 0 ]] || die "needs root (the daemons run as root)"
  cmd_stop quiet
  mkdir -p "$DIR"/{etc,munge,run,pids,log,state,spool}
  chmod 711 "$DIR" "$DIR/munge"
  install_packages "$mode"
  local t_install=$((SECONDS - t0))
  # a fresh controller and database each start: job ids start at 1 again, and an old job of the same
  # id must not answer for a new one
  rm -rf "$DIR/state"/* "$DIR/spool"/* "$DIR/mysql"
  write_configs "$mode"
  start_munge
  [[ $mode == accounting ]] && start_database
  if [[ -e $SYSTEM_CONF || -L $SYSTEM_CONF ]] && [[ "$(readlink "$SYSTEM_CONF")" != "$CONF" ]]; then
    die "$SYSTEM_CONF exists: jobs would use it instead of this cluster's config"
  fi
  mkdir -p "$(dirname "$SYSTEM_CONF")"
  ln -sfn "$CONF" "$SYSTEM_CONF"
  start_daemon slurmctld slurmctld -D -i
  wait_for slurmctld 60 scontrol ping
  [[ $mode == accounting ]] && add_account
  start_daemon slurmd slurmd -D -N "$NODE"
  wait_for "node $NODE idle" 60 node_idle || { sinfo -N -l >&2 || true; exit 1; }
  log "up $(label "$mode"), SLURM $(sinfo -V | cut -d' ' -f2), in $((SECONDS - t0)) s (install ${t_install} s); $(cmd_env)"
}

cmd_stop() {
  local name pid n
  for name in slurmd slurmctld slurmdbd mariadbd munged; do
    if alive "$name"; then
      pid=$(cat "$DIR/pids/$name")
      kill -TERM "$pid" 2>/dev/null || true
      for n in $(seq 1 40); do alive "$name" || break; sleep 0.25; done
      alive "$name" && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$DIR/pids/$name"
  done
  [[ "$(readlink "$SYSTEM_CONF" 2>/dev/null)" == "$CONF" ]] && rm -f "$SYSTEM_CONF"
  [[ "${1:-}" == quiet ]] || log "stopped"
}

cmd_status() {
  local name mode
  mode=$(cat "$DIR/mode" 2>/dev/null) || { log "not started"; return 1; }
  for name in munged slurmctld slurmd; do alive "$name" || { log "$name is not running"; return 1; }; done
  if [[ $mode == accounting ]]; then
    for name in mariadbd slurmdbd; do alive "$name" || { log "$name is not running"; return 1; }; done
  fi
  node_idle || { log "node $NODE is not idle: $(sinfo -h -o %T 2>&1)"; return 1; }
  echo "up $(label "$mode"): $(cmd_env)"
}

cmd_env() { echo "export SLURM_CONF=$CONF"; }

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 start [--accounting|--no-accounting] | stop | status | env" >&2; exit 2 ;;
esac
