#!/usr/bin/env bash
# deps.sh — installs the Debian packages fractalctl needs to build, serve and
# be tested (only those missing). Needs root (or sudo) when something is missing.
# nodejs and npm count as present when the `node` and `npm` commands are (a
# Node.js from another source, which bundles npm, will do).
set -euo pipefail
pkgs=(gcc meson ninja-build pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev
      libssl-dev libcrypt-dev zlib1g-dev libzip-dev libcurl4-openssl-dev libyaml-dev python3 python3-venv "$@")
missing=()
for p in "${pkgs[@]}"; do
	case $p in
	nodejs) command -v node >/dev/null && continue ;;
	npm) command -v npm >/dev/null && continue ;;
	esac
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps.sh: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
