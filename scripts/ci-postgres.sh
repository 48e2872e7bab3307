#!/usr/bin/env bash
# Bring up a local PostgreSQL for the storage tests on Debian 12 (CI runners, dev containers) without
# Docker: install the server if absent, start (or create) the cluster, and ensure the `clasper` role
# and `clasper_test` database exist, plus the superuser `clasper_admin` (password `clasper_admin`)
# that tests use to act outside the application role's privileges. Idempotent: safe to run when
# everything is already up.
#
# Must run as root. Progress goes to stderr; the only stdout line is the connection string, so
# `scripts/ci-postgres.sh >> "$GITHUB_ENV"` or `export "$(scripts/ci-postgres.sh)"` both work.
set -euo pipefail

ROLE=clasper
PASSWORD=clasper
ADMIN_ROLE=clasper_admin
ADMIN_PASSWORD=clasper_admin
DATABASE=clasper_test
CLUSTER=main

log() { echo "ci-postgres: $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  log "must run as root (it installs packages and starts the cluster as the postgres user)"
  exit 1
fi

# Highest installed server major, e.g. 15; empty when only the client (or nothing) is installed.
installed_version() {
  local bin
  for bin in /usr/lib/postgresql/*/bin/postgres; do
    [[ -x $bin ]] && basename "$(dirname "$(dirname "$bin")")"
  done | sort -n | tail -n 1
}

VERSION=$(installed_version)
if [[ -z $VERSION ]]; then
  log "no PostgreSQL server binaries found; installing the Debian postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y postgresql >&2
  VERSION=$(installed_version)
  if [[ -z $VERSION ]]; then
    log "apt-get installed postgresql but no server binaries were found under /usr/lib/postgresql"
    exit 1
  fi
fi
log "using PostgreSQL $VERSION"

# Debian's package normally creates the cluster, but images built with a policy that skips it (or a
# data directory wiped by hand) leave none.
if ! pg_lsclusters --no-header | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c { found = 1 } END { exit !found }'; then
  log "creating cluster $VERSION/$CLUSTER"
  pg_createcluster "$VERSION" "$CLUSTER" >&2
fi

PORT=$(pg_lsclusters --no-header | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c { print $3 }')

# `pg_ctlcluster status` exits 0 when running and 3 when stopped; starting a running cluster is an
# error, so check first. The systemctl redirect is skipped because CI containers have no systemd.
if pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" status >/dev/null 2>&1; then
  log "cluster $VERSION/$CLUSTER already running on port $PORT"
else
  log "starting cluster $VERSION/$CLUSTER on port $PORT"
  pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" start >&2
fi

for _ in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p "$PORT" -t 1; then
    break
  fi
  sleep 0.5
done
if ! pg_isready -q -h 127.0.0.1 -p "$PORT" -t 1; then
  log "server did not accept connections on 127.0.0.1:$PORT within 30s; see /var/log/postgresql/postgresql-$VERSION-$CLUSTER.log"
  exit 1
fi

as_postgres() { runuser -u postgres -- "$@"; }
psql_admin() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres "$@"; }

# The role is altered on every run so a role left with another password or without CREATEDB (the
# tests create one database per test file) is repaired rather than trusted.
if [[ -z $(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'") ]]; then
  log "creating role $ROLE"
  psql_admin -c "CREATE ROLE $ROLE"
fi
psql_admin -c "ALTER ROLE $ROLE WITH LOGIN CREATEDB PASSWORD '$PASSWORD'"

# A superuser for tests that must act outside the application's privileges (tampering with the
# append-only audit log to prove verification catches it). Repaired on every run like the role above.
if [[ -z $(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$ADMIN_ROLE'") ]]; then
  log "creating superuser role $ADMIN_ROLE"
  psql_admin -c "CREATE ROLE $ADMIN_ROLE"
fi
psql_admin -c "ALTER ROLE $ADMIN_ROLE WITH LOGIN SUPERUSER PASSWORD '$ADMIN_PASSWORD'"

if [[ -z $(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'") ]]; then
  log "creating database $DATABASE"
  psql_admin -c "CREATE DATABASE $DATABASE OWNER $ROLE"
fi

echo "TEST_DATABASE_URL=postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
