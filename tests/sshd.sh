#!/usr/bin/env bash
# sshd.sh — a throwaway OpenSSH server on 127.0.0.1 for the SLURM-over-SSH tests.
#
#   tests/sshd.sh start DIR [SLURM_CONF]  start sshd on a free port, everything under DIR; returns once the
#                                         test user has logged in with the generated key and run a command
#   tests/sshd.sh stop DIR                stop sshd by its pid (and the sessions it started), remove DIR
#   tests/sshd.sh restart DIR             stop sshd and start it again on the same port and keys (what an
#                                         admin's `systemctl restart ssh` does: open sessions are dropped)
#
# Needs root. The test user is the SLURM cluster's, fractaltest (tests/slurm_cluster.sh creates it); its
# login is key-only: a fresh ed25519 key pair in DIR (DIR/client_key, owned by root, the server's user),
# the public half in DIR/authorized_keys/fractaltest. DIR/known_hosts names the server's own host key
# (DIR/host_key) as "[127.0.0.1]:PORT", so that clients check it (StrictHostKeyChecking=yes). DIR/env holds
# SSHTEST_HOST (127.0.0.1:PORT, the form a resource's `host` takes), SSHTEST_PORT, SSHTEST_USER, SSHTEST_KEY,
# SSHTEST_KNOWN_HOSTS and SSHTEST_DIR, as VAR=value lines.
#
# Settings that matter on this kind of machine (a container, no systemd, no PAM session): UsePAM no (no PAM
# stack is configured for sshd here); a system account made by useradd is locked ("!" in /etc/shadow), which
# sshd refuses even for key logins without PAM, so its password field is set to "*" (no password, not
# locked); AllowUsers keeps every other account out; Subsystem sftp internal-sftp (no sftp-server binary
# needed); StrictModes no, since the authorized_keys file lives under /tmp (world-writable) and not in the
# user's home, so that several test runs (worktrees) can each have their own. SLURM_CONF reaches the user's
# sessions through the server's SetEnv (OpenSSH >= 8.7): the test cluster has no /etc/slurm/slurm.conf; so do
# PIP_NO_INDEX=1 and PIP_FIND_LINKS=/usr/share/python-wheels, the offline pip of the collection tests.
set -euo pipefail
usage="usage: sshd.sh start DIR [SLURM_CONF] | stop DIR | restart DIR"
cmd=${1:?$usage}
dir=${2:?missing DIR}
user=fractaltest
[ "$(id -u)" = 0 ] || { echo "sshd.sh: must run as root" >&2; exit 1; }
[ "$cmd" != start ] || mkdir -p "$dir"
[ -d "$dir" ] || { echo "sshd.sh: no $dir" >&2; exit 1; }
dir=$(cd "$dir" && pwd)

log() { echo "sshd.sh: $*" >&2; }
die() {
	log "$*"
	[ ! -s "$dir/sshd.log" ] || { echo "---- $dir/sshd.log (last 30 lines)" >&2; tail -n 30 "$dir/sshd.log" >&2; }
	exit 1
}

sshd_pid() {
	local pid
	pid=$(cat "$dir/sshd.pid" 2>/dev/null) && [ -n "$pid" ] || return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sshd ] || return 1
	echo "$pid"
}

alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$(echo "${stat##*) }" | cut -d' ' -f1)" != Z ]
}

stop_sshd() {
	local pid i
	pid=$(sshd_pid) || return 0
	# the listener; its session children are in its process group until they setsid (they do): the
	# sessions of this server are its children, found by parent pid
	local kids
	kids=$(pgrep -P "$pid" || true)
	kill -TERM "$pid" 2>/dev/null || true
	for k in $kids; do kill -TERM "$k" 2>/dev/null || true; done
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
	rm -f "$dir/sshd.pid"
}

start_sshd() {
	/usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log" || die "sshd did not start"
	local i
	for ((i = 0; i < 100; i++)); do
		sshd_pid >/dev/null && break
		sleep 0.1
	done
	sshd_pid >/dev/null || die "sshd wrote no pid file"
}

check_login() {
	local port out
	port=$(cat "$dir/port")
	out=$(ssh -F none -i "$dir/client_key" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
		-o UserKnownHostsFile="$dir/known_hosts" -o ConnectTimeout=10 -p "$port" "$user@127.0.0.1" \
		'echo "$(id -un) $SLURM_CONF"' 2>&1) || die "the test user cannot log in: $out"
	case $out in "$user "*) ;; *) die "unexpected login answer: $out" ;; esac
}

case "$cmd" in
start)
	slurm_conf=${3:-}
	[ ! -e "$dir/sshd_config" ] || { log "$dir already holds a server"; exit 1; }
	id -u "$user" >/dev/null 2>&1 || die "no user $user (tests/slurm_cluster.sh creates it)"
	chmod 755 "$dir"
	# a locked account ("!") is refused by sshd; "*": no password, not locked
	case $(getent shadow "$user" | cut -d: -f2) in '!'*) usermod -p '*' "$user" ;; esac
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	echo "$port" >"$dir/port"
	ssh-keygen -q -t ed25519 -N '' -C "fractal-test-host" -f "$dir/host_key"
	ssh-keygen -q -t ed25519 -N '' -C "fractal-test-client" -f "$dir/client_key"
	mkdir -p "$dir/authorized_keys"
	cp "$dir/client_key.pub" "$dir/authorized_keys/$user"
	chmod 644 "$dir/authorized_keys/$user"
	echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_key.pub")" >"$dir/known_hosts"
	{
		echo "ListenAddress 127.0.0.1:$port"
		echo "HostKey $dir/host_key"
		echo "PidFile $dir/sshd.pid"
		echo "AuthorizedKeysFile $dir/authorized_keys/%u"
		echo "AllowUsers $user"
		echo "PubkeyAuthentication yes"
		echo "PasswordAuthentication no"
		echo "KbdInteractiveAuthentication no"
		echo "PermitRootLogin no"
		echo "UsePAM no"
		echo "StrictModes no"
		echo "Subsystem sftp internal-sftp"
		echo "LogLevel VERBOSE"
		echo "MaxStartups 50"
		echo "MaxSessions 50"
		# the cluster's own settings for its users' sessions: where SLURM is, and pip offline (as the
		# collection tests run it locally: PIP_NO_INDEX, Debian's wheels of pip and setuptools)
		echo "SetEnv ${slurm_conf:+SLURM_CONF=$slurm_conf }PIP_NO_INDEX=1 PIP_FIND_LINKS=/usr/share/python-wheels"
	} >"$dir/sshd_config"
	# sshd's privilege separation folder (a package's tmpfiles.d makes it at boot, with systemd)
	install -d -m 755 /run/sshd
	/usr/sbin/sshd -t -f "$dir/sshd_config" || die "sshd refuses its config"
	start_sshd
	check_login
	cat >"$dir/env" <<ENV
SSHTEST_DIR=$dir
SSHTEST_HOST=127.0.0.1:$port
SSHTEST_PORT=$port
SSHTEST_USER=$user
SSHTEST_KEY=$dir/client_key
SSHTEST_KNOWN_HOSTS=$dir/known_hosts
ENV
	log "sshd up on 127.0.0.1:$port (pid $(sshd_pid))"
	;;
stop)
	stop_sshd
	rm -rf "$dir"
	;;
restart)
	stop_sshd
	start_sshd
	;;
*)
	echo "$usage" >&2
	exit 2
	;;
esac
