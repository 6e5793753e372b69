#!/usr/bin/env bash
# pg_cluster.sh — a throwaway PostgreSQL cluster for the tests.
#
#   tests/pg_cluster.sh start DIR PORT   initdb + pg_ctl start under DIR, listening
#                                        on 127.0.0.1:PORT and on a UNIX socket in DIR/sock
#   tests/pg_cluster.sh stop DIR         stop it and remove DIR
#
# Roles: postgres (superuser, trust on the socket and on 127.0.0.1),
# fractal (CREATEDB, password 'fractal-test-pw', scram on 127.0.0.1, trust on
# the socket) and one named like the user running the tests (trust on the
# socket), so that POSTGRES_USER's default (the system user) can be tested.
set -euo pipefail
cmd=${1:?usage: pg_cluster.sh start DIR PORT | stop DIR}
dir=${2:?missing DIR}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bindir" ] || { echo "pg_cluster.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_pg() {
	# initdb and postgres refuse to run as root
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
	port=${3:?missing PORT}
	mkdir -p "$dir/sock"
	[ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
	as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
		|| as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
		|| { cat "$dir/initdb.log" >&2; exit 1; }
	cat >"$dir/data/pg_hba.conf" <<HBA
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
HBA
	as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off" \
		start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
	me=$(id -un)
	psql=("$bindir/psql" -h "$dir/sock" -p "$port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1)
	"${psql[@]}" -c "CREATE ROLE fractal LOGIN CREATEDB PASSWORD 'fractal-test-pw'"
	if [ "$me" != postgres ] && [ "$me" != fractal ]; then
		"${psql[@]}" -c "CREATE ROLE \"$me\" LOGIN CREATEDB"
	fi
	;;
stop)
	if [ -d "$dir/data" ]; then
		as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	;;
*)
	echo "usage: pg_cluster.sh start DIR PORT | stop DIR" >&2
	exit 2
	;;
esac
