#!/usr/bin/env bash
# Make sure the services the test suite uses answer on loopback: PostgreSQL on 127.0.0.1:5432
# (user postgres, trusted) and Redis on 127.0.0.1:6379. Starts the system servers when they are not
# answering and installs the Debian packages first when they are missing. Used by infra/test.sh and CI.
set -euo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_until_answers() {
  for _ in $(seq 1 30); do
    answers "$1" && return 0
    sleep 1
  done
  echo "$2 is not answering on 127.0.0.1:$1" >&2
  return 1
}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

newest_postgres_version() { ls /etc/postgresql | sort -V | tail -n 1; }

trust_loopback_connections() {
  # Only on a cluster we installed just now: the tests connect as postgres without a password.
  local hba
  hba="/etc/postgresql/$(newest_postgres_version)/main/pg_hba.conf"
  as_root sed -E -i 's#^(host[[:space:]]+all[[:space:]]+all[[:space:]]+(127\.0\.0\.1/32|::1/128)[[:space:]]+)[^[:space:]]+#\1trust#' "$hba"
}

ensure_postgres() {
  answers 5432 && return 0
  local installed_now=no
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "Installing PostgreSQL ..."
    apt_install postgresql
    installed_now=yes
  fi
  if [ "$installed_now" = yes ]; then
    trust_loopback_connections
  fi
  echo "Starting PostgreSQL ..."
  as_root pg_ctlcluster --skip-systemctl-redirect "$(newest_postgres_version)" main start \
    || as_root pg_ctlcluster --skip-systemctl-redirect "$(newest_postgres_version)" main reload
  wait_until_answers 5432 PostgreSQL
}

ensure_redis() {
  answers 6379 && return 0
  if ! command -v redis-server >/dev/null; then
    echo "Installing Redis ..."
    apt_install redis-server
  fi
  echo "Starting Redis ..."
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_until_answers 6379 Redis
}

ensure_postgres
ensure_redis
