#!/usr/bin/env bash
# slurm_cluster.sh — a throwaway single-node SLURM cluster for the tests.
#
#   tests/slurm_cluster.sh start DIR        install what is missing, then start munged, MariaDB, slurmdbd,
#                                           slurmctld and slurmd with everything under DIR; returns once a
#                                           job submitted as the test user has completed and sacct shows it
#   tests/slurm_cluster.sh stop DIR         cancel what still runs, stop every daemon by its pid, wait for
#                                           it to exit, remove DIR
#   tests/slurm_cluster.sh restart-ctld DIR stop slurmctld and start it again on its saved state; returns once
#                                           the node has registered again (running jobs go on meanwhile)
#
# Needs root. Clients need SLURM_CONF=DIR/slurm.conf; DIR/env holds it and the facts the tests read
# (SLURMTEST_DIR, SLURMTEST_USER, SLURMTEST_PARTITION), as VAR=value lines. The cluster, fractaltest, has one
# node (this host, on 127.0.0.1) in one partition, main, and free ports for slurmctld, slurmd and slurmdbd;
# munged has its own key and socket in DIR, MariaDB its own datadir and only a UNIX socket (no TCP). Jobs
# are recorded by slurmdbd (accounting_storage/mysql), so sacct answers every user; the accounting cluster
# has an account `fractal` holding root and the test user (AccountingStorageEnforce stays off).
#
# The test user, fractaltest (a system user with a home), runs SLURM commands through
# `sudo --set-home --non-interactive -u fractaltest CMD`, as the SLURM executor does. sudo resets the
# environment, so /etc/sudoers.d/fractal-slurm-test keeps SLURM_CONF (Defaults env_keep). The config is
# not installed at /etc/slurm/slurm.conf instead because clusters of several test runs (other worktrees)
# may live on one machine at once, each in its own DIR, and one default path can name only one of them.
#
# Settings that matter on this kind of machine (a container, no systemd, no cgroup delegation):
# proctrack/linuxproc and task/none, so no cgroup.conf; DefMemPerCPU, else a job without --mem takes the
# whole node; EnforcePartLimits=ALL, else an impossible request stays PENDING forever instead of being
# refused; batch_sched_delay=0,sched_min_interval=0, so a job starts as soon as it is submitted. slurmctld
# reads SchedulerParameters only when it first schedules, which it does 3 s after starting: the first job
# after a (re)start waits until then. KillWait=5 so that a cancelled job that ignores SIGTERM is killed
# soon. Clients authenticate to slurmdbd through the munged that AccountingStoragePass names (AuthInfo is
# for slurmctld and slurmd only), so it names ours too. slurm.conf is written before any SLURM command
# runs: without one they look the config up in DNS. munged logs "Unauthorized credential for client
# UID=0" once per daemon and job step started: Slurm checks at start that root cannot decode a credential
# meant for another uid.
set -euo pipefail
usage="usage: slurm_cluster.sh start DIR | stop DIR | restart-ctld DIR"
cmd=${1:?$usage}
dir=${2:?missing DIR}
user=fractaltest
cluster=fractaltest
partition=main
[ "$(id -u)" = 0 ] || { echo "slurm_cluster.sh: must run as root" >&2; exit 1; }
[ "$cmd" != start ] || mkdir -p "$dir"
[ -d "$dir" ] || { echo "slurm_cluster.sh: no $dir" >&2; exit 1; }
dir=$(cd "$dir" && pwd)
export SLURM_CONF=$dir/slurm.conf
as_user=(sudo --set-home --non-interactive -u "$user")
# small and unsafe on a crash, which a throwaway database may be
innodb=(--skip-log-bin --innodb-buffer-pool-size=32M --innodb-log-file-size=16M --innodb-flush-log-at-trx-commit=0
	--innodb-doublewrite=0 --innodb-flush-method=nosync)

log() { echo "slurm_cluster.sh: $*" >&2; }

die() {
	local f
	log "$*"
	for f in "$dir"/log/*; do
		[ -s "$f" ] || continue
		echo "---- $f (last 40 lines)" >&2
		tail -n 40 "$f" >&2
	done
	exit 1
}

# until_ok SECONDS CMD...: runs CMD every 0.1 s until it succeeds; fails after SECONDS
until_ok() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.1
	done
}

# daemon_pid NAME PIDFILE: the pid in PIDFILE, if that process is NAME (not another that got its pid)
daemon_pid() {
	local pid
	pid=$(cat "$2" 2>/dev/null) && [ -n "$pid" ] || return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] || return 1
	echo "$pid"
}

# alive PID: the process runs (a zombie has exited: this machine's init reaps orphans only every few seconds)
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$(echo "${stat##*) }" | cut -d' ' -f1)" != Z ]
}

# stop_pid PID WHAT: SIGTERM, then SIGKILL after 30 s; returns once PID has exited
stop_pid() {
	local i
	kill -TERM "$1" 2>/dev/null || return 0
	for ((i = 0; i < 300; i++)); do
		alive "$1" || return 0
		sleep 0.1
	done
	log "$2 (pid $1) still running 30 s after SIGTERM: killing it"
	kill -KILL "$1" 2>/dev/null || true
	while alive "$1"; do sleep 0.1; done
}

descendants() { # PID
	local c
	for c in $(pgrep -P "$1"); do
		echo "$c"
		descendants "$c"
	done
}

# kill_tree PID: SIGKILL to PID and its descendants; returns once they have exited
kill_tree() {
	local p pids
	pids="$1 $(descendants "$1")"
	for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
	for p in $pids; do while alive "$p"; do sleep 0.1; done; done
}

stop_daemon() { # NAME PIDFILE
	local pid
	pid=$(daemon_pid "$1" "$2") || return 0
	stop_pid "$pid" "$1"
	rm -f "$2"
}

install_missing() {
	local missing=() p rule=/etc/sudoers.d/fractal-slurm-test
	for p in slurmctld slurmd slurm-client slurmdbd munge mariadb-server sudo; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# their own services are not started (no systemd): ours are, below
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
	id -u "$user" >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash --user-group "$user"
	if [ ! -f "$rule" ]; then
		echo 'Defaults env_keep += "SLURM_CONF"' >"$rule.tmp"
		chmod 440 "$rule.tmp"
		visudo -cqf "$rule.tmp" && mv "$rule.tmp" "$rule"
	fi
	# root may run anything as anyone by Debian's /etc/sudoers: no rule needed for that
	"${as_user[@]}" true || die "root cannot run commands as $user through sudo"
}

write_configs() {
	local ctld_port slurmd_port dbd_port host mem_mb
	read -r ctld_port slurmd_port dbd_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
	host=$(hostname -s)
	# a bit below the memory free now: slurmd drains a node that has less than configured
	mem_mb=$(awk '/^MemAvailable:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
	cat >"$dir/slurm.conf" <<CONF
ClusterName=$cluster
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MessageTimeout=5
KillWait=5
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=100
EnforcePartLimits=ALL
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$dbd_port
AccountingStoragePass=$dir/munge/munge.socket
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=$partition Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
	# slurmdbd reads it beside slurm.conf, and refuses it readable by others
	cat >"$dir/slurmdbd.conf" <<CONF
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$dbd_port
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
PidFile=$dir/run/slurmdbd.pid
LogFile=$dir/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
CONF
	chmod 600 "$dir/slurmdbd.conf"
	cat >"$dir/env" <<ENV
SLURM_CONF=$dir/slurm.conf
SLURMTEST_DIR=$dir
SLURMTEST_USER=$user
SLURMTEST_PARTITION=$partition
ENV
}

start_munged() {
	# munged runs as munge and checks that its files are its own; every user must reach the socket
	install -d -o munge -g munge -m 755 "$dir/munge"
	install -o munge -g munge -m 644 /dev/null "$dir/log/munged.log"
	runuser -u munge -- mungekey --create --keyfile="$dir/munge/munge.key"
	runuser -u munge -- munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
		--pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" \
		|| die "munged did not start"
}

start_mariadb() {
	install -d -o mysql -g mysql "$dir/mysql"
	install -o mysql -g mysql -m 644 /dev/null "$dir/log/mariadb.log"
	mariadb-install-db --no-defaults --user=mysql --datadir="$dir/mysql/data" --auth-root-authentication-method=socket \
		--skip-test-db --skip-name-resolve "${innodb[@]}" >"$dir/log/mariadb-install.log" 2>&1 \
		|| die "mariadb-install-db failed"
	setsid mariadbd --no-defaults --user=mysql --datadir="$dir/mysql/data" --socket="$dir/mysql/mysqld.sock" \
		--pid-file="$dir/mysql/mariadb.pid" --log-error="$dir/log/mariadb.log" --skip-networking --skip-name-resolve \
		"${innodb[@]}" </dev/null >/dev/null 2>&1 &
	until_ok 60 mariadb-admin --no-defaults --socket="$dir/mysql/mysqld.sock" ping || die "MariaDB did not start"
}

start_slurmdbd() {
	# slurmdbd has no socket setting: the MariaDB client library takes it from MYSQL_UNIX_PORT; it connects
	# as root, whom MariaDB knows by the socket's peer (unix_socket authentication)
	MYSQL_UNIX_PORT=$dir/mysql/mysqld.sock slurmdbd || die "slurmdbd did not start"
	until_ok 60 sacctmgr -n list cluster || die "slurmdbd does not answer"
	sacctmgr -i -Q add cluster "$cluster" >/dev/null || die "sacctmgr add cluster failed"
}

add_accounts() {
	sacctmgr -i -Q >/dev/null <<CMDS || die "sacctmgr could not add the account and its users"
add account fractal Cluster=$cluster Description=tests Organization=fractal
add user root,$user Account=fractal Cluster=$cluster
CMDS
}

start_slurmctld() {
	slurmctld || die "slurmctld did not start"
	until_ok 60 scontrol ping || die "slurmctld does not answer"
}

node_state() { sinfo -h -o %t 2>/dev/null; }

node_idle() { [ "$(node_state)" = idle ]; }

# the node has registered with slurmctld (after a restart it is unknown until then; * = not responding)
node_registered() {
	local s
	s=$(node_state) && [ -n "$s" ] || return 1
	case $s in unk* | *'*') return 1 ;; esac
}

# job_state ID: the job's state in the accounting database, as the test user sees it
job_state() { "${as_user[@]}" sacct -n -X -P -o State -j "$1" 2>/dev/null | head -n 1; }

job_completed() { [ "$(job_state "$1")" = COMPLETED ]; }

check_job() {
	local id
	id=$("${as_user[@]}" sbatch --parsable --chdir=/tmp --output=/dev/null --wrap hostname) \
		|| die "sbatch as $user failed"
	until_ok 60 job_completed "$id" \
		|| die "job $id did not complete (sacct: $(job_state "$id"); squeue: $(squeue -h -j "$id" -o '%T %r' 2>&1))"
}

no_jobs() { [ -z "$(squeue -h -o %i 2>/dev/null)" ]; }

# the job steps of this cluster that outlived their slurmd: slurmstepd inherits slurmd's SLURM_CONF
stray_steps() {
	local p
	for p in $(pgrep -x slurmstepd); do
		tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qxF "SLURM_CONF=$SLURM_CONF" && echo "$p"
	done
	return 0
}

case "$cmd" in
start)
	t0=$(date +%s.%N)
	install_missing
	t1=$(date +%s.%N)
	[ ! -e "$dir/slurm.conf" ] || { log "$dir already holds a cluster"; exit 1; }
	chmod 755 "$dir"
	mkdir -p "$dir/log" "$dir/run" "$dir/state" "$dir/spool"
	write_configs
	start_munged
	start_mariadb
	start_slurmdbd
	start_slurmctld
	slurmd || die "slurmd did not start"
	add_accounts
	until_ok 60 node_idle || die "the node is not idle: $(sinfo -N -o '%N %t %E' 2>&1)"
	check_job
	log "cluster up in $dir ($(awk -v a="$t0" -v b="$t1" -v c="$(date +%s.%N)" \
		'BEGIN { printf "install %.1f s, start %.1f s", b - a, c - b }'))"
	;;
stop)
	# jobs first, while slurmctld is there to end them: their steps outlive slurmd
	if scontrol ping >/dev/null 2>&1 && ! no_jobs; then
		scancel $(squeue -h -o %i) 2>/dev/null || true
		until_ok 30 no_jobs || log "jobs still listed 30 s after scancel"
	fi
	stop_daemon slurmd "$dir/run/slurmd.pid"
	for p in $(stray_steps); do
		# it ignores SIGTERM; its job's processes are its descendants (proctrack/linuxproc)
		log "killing a leftover slurmstepd (pid $p) and its job"
		kill_tree "$p"
	done
	stop_daemon slurmctld "$dir/run/slurmctld.pid"
	stop_daemon slurmdbd "$dir/run/slurmdbd.pid"
	stop_daemon mariadbd "$dir/mysql/mariadb.pid"
	stop_daemon munged "$dir/munge/munged.pid"
	rm -rf "$dir"
	;;
restart-ctld)
	stop_daemon slurmctld "$dir/run/slurmctld.pid"
	start_slurmctld
	until_ok 60 node_registered || die "the node did not register again: $(sinfo -N -o '%N %t %E' 2>&1)"
	;;
*)
	echo "$usage" >&2
	exit 2
	;;
esac
