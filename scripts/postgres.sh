#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the end-to-end tests and for trying target-postgres locally.
#
#   scripts/postgres.sh start [DIR]   create and start a cluster in DIR (default: a new temp
#                                     folder); prints `export NAME=value` lines: PG* for psql and
#                                     TARGET_POSTGRES_* for Meltano's target-postgres
#   scripts/postgres.sh env DIR       print those lines again for a running cluster
#   scripts/postgres.sh stop DIR      stop the cluster and delete DIR
#
#   eval "$(scripts/postgres.sh start)"   # then: psql, meltano run ... target-postgres
#   scripts/postgres.sh stop "$PG_CLUSTER_DIR"
#
# The server listens on 127.0.0.1 only, on a free port, with its socket in DIR. Host (TCP)
# logins need the generated password (scram-sha-256), as a real server would. initdb and
# pg_ctl are taken from PATH, else from Debian's /usr/lib/postgresql/<version>/bin (the newest);
# as root they run as the `postgres` user, since PostgreSQL refuses to run as root.
# Nothing is installed here: on Debian, `apt-get install postgresql` provides the binaries.
set -euo pipefail

MARKER=".tap-udemy-business-postgres"
DATABASE="warehouse"
DB_USER="postgres"

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}

find_bindir() {
    local initdb
    if initdb=$(command -v initdb 2>/dev/null) && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$initdb")"
        return
    fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
        echo "$dir"
        return
    fi
    die "initdb/pg_ctl not found in PATH nor in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
}

# Run a PostgreSQL program as an unprivileged user when we are root.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

print_env() {
    local dir="$1"
    [[ -f "$dir/$MARKER" ]] || die "$dir is not a cluster made by this script"
    # shellcheck source=/dev/null
    source "$dir/$MARKER"
    cat <<EOF
export PG_CLUSTER_DIR='$dir'
export PGHOST=127.0.0.1
export PGPORT=$PORT
export PGUSER=$DB_USER
export PGPASSWORD=$PASSWORD
export PGDATABASE=$DATABASE
export TARGET_POSTGRES_HOST=127.0.0.1
export TARGET_POSTGRES_PORT=$PORT
export TARGET_POSTGRES_USER=$DB_USER
export TARGET_POSTGRES_PASSWORD=$PASSWORD
export TARGET_POSTGRES_DATABASE=$DATABASE
EOF
}

start() {
    local dir="${1:-}"
    local bindir
    bindir=$(find_bindir)
    if [[ -z "$dir" ]]; then
        dir=$(mktemp -d "${TMPDIR:-/tmp}/tap-udemy-pg.XXXXXX")
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [[ -e "$dir/data" ]] && die "$dir/data already exists: stop that cluster first"
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 \
            || useradd --system --no-create-home --home-dir /nonexistent postgres
        chown postgres: "$dir"
        chmod 700 "$dir"
        # The postgres user must be able to reach DIR through its parents (mktemp folders are 700).
        local parent
        parent=$(dirname "$dir")
        while [[ "$parent" != "/" ]]; do
            runuser -u postgres -- test -x "$parent" || chmod o+x "$parent"
            parent=$(dirname "$parent")
        done
    fi
    local password
    password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
    as_owner bash -c "umask 077; printf '%s\n' '$password' > '$dir/pwfile'"
    as_owner "$bindir/initdb" -D "$dir/data" -U "$DB_USER" --pwfile="$dir/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    rm -f "$dir/pwfile"

    local port attempt
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null; then
            break
        fi
        # Most likely another process took the port between the probe and the bind.
        [[ $attempt -eq 5 ]] && { tail -n 20 "$dir/server.log" >&2; die "pg_ctl start failed"; }
    done
    as_owner "$bindir/createdb" -h "$dir" -p "$port" -U "$DB_USER" "$DATABASE"
    {
        echo "PORT=$port"
        echo "PASSWORD=$password"
        echo "BINDIR=$bindir"
    } >"$dir/$MARKER"
    echo "postgres.sh: PostgreSQL ($("$bindir/pg_ctl" --version)) on 127.0.0.1:$port, data in $dir" >&2
    print_env "$dir"
}

stop() {
    local dir="${1:-}"
    [[ -n "$dir" ]] || die "usage: $0 stop DIR"
    [[ -f "$dir/$MARKER" ]] || die "$dir is not a cluster made by this script"
    # shellcheck source=/dev/null
    source "$dir/$MARKER"
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        as_owner "$BINDIR/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    start) start "${2:-}" ;;
    env) print_env "${2:?usage: $0 env DIR}" ;;
    stop) stop "${2:-}" ;;
    *) die "usage: $0 start [DIR] | env DIR | stop DIR" ;;
esac
