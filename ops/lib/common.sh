# shellcheck shell=bash
# Shared helpers for ops/ scripts: package installs, a throwaway Postgres cluster, cleanup.
# Source it: . "$(dirname "$0")/lib/common.sh"

STARLING_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STARLING_CLEANUP=()

starling_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
starling_die() { starling_log "error: $*"; exit 1; }

starling_cleanup() {
    local i
    for (( i=${#STARLING_CLEANUP[@]}-1; i>=0; i-- )); do eval "${STARLING_CLEANUP[$i]}" || true; done
}
trap starling_cleanup EXIT
trap 'exit 130' INT TERM

# starling_need_debs PKG...: apt-get install whatever is missing (waits for another apt's lock).
starling_need_debs() {
    local missing=() p
    for p in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    starling_log "installing: ${missing[*]}"
    if ! apt-cache show "${missing[0]}" >/dev/null 2>&1; then
        $sudo apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null || starling_die "apt-get update failed"
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q \
        --no-install-recommends "${missing[@]}" >&2 || starling_die "apt-get install ${missing[*]} failed"
}

starling_need_swift() {
    command -v swift >/dev/null 2>&1 || [ -x /opt/swift/usr/bin/swift ] \
        || starling_die "Swift 6 is required (https://www.swift.org/install/linux/); put swift on PATH"
    command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"
}

# The Debian packages every build needs: the C libraries starling links and pkg-config to find them.
starling_need_build_deps() {
    starling_need_debs libpq-dev libssl-dev libnghttp2-dev zlib1g-dev pkg-config
}

# What ops/demo needs, and nothing more (a newcomer's first command should not fetch a browser): the build,
# a PostgreSQL server (`starling demo` runs initdb and pg_ctl) and the openssl tool (its throwaway certificates).
starling_need_demo_deps() {
    starling_need_build_deps
    starling_need_debs postgresql openssl
}

# What the test suite, ops/soak and the benchmarks run besides the demo's needs: HTTP/2 peers and curl, Python
# with httpx and h2, ss and ps, Chromium (the dashboard test) and Prometheus's promtool (the alert rules test).
starling_need_test_deps() {
    starling_need_demo_deps
    starling_need_debs postgresql-contrib curl nghttp2-client nghttp2-server \
        python3 python3-httpx python3-h2 iproute2 procps chromium prometheus gdb \
        patroni etcd-server etcd-client
}

# The newest installed PostgreSQL's bin directory.
starling_pg_bin() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] || starling_die "no PostgreSQL server found under /usr/lib/postgresql"
    echo "$d"
}

# starling_install_decoder [PG_CONFIG]: builds ops/decoder's starling_pgoutput plugin for the server of PG_CONFIG
# (default: the newest installed server's) and installs it into its library directory (README "The decoding
# plugin"), unless the library there was built from this source already. Needs root (or sudo) for the install,
# and the server's development package (installed when missing).
starling_install_decoder() {
    local pg_config=${1:-} src="$STARLING_ROOT/ops/decoder" major libdir sum build sudo=""
    [ -n "$pg_config" ] || pg_config="$(starling_pg_bin)/pg_config"
    [ -x "$pg_config" ] || starling_die "no pg_config at $pg_config"
    major=$("$pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
    starling_need_debs "postgresql-server-dev-$major" make gcc
    libdir=$("$pg_config" --pkglibdir)
    sum=$(cat "$src/starling_pgoutput.c" "$src/Makefile" | sha256sum | cut -d' ' -f1)
    if [ -f "$libdir/starling_pgoutput.so" ] && [ "$(cat "$libdir/starling_pgoutput.sha256" 2>/dev/null)" = "$sum" ]; then
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    build=$(mktemp -d /tmp/starling-decoder.XXXXXX)
    cp "$src/starling_pgoutput.c" "$src/Makefile" "$build/"
    # with_llvm=no: no JIT bitcode (which needs clang at install time).
    make -s -C "$build" PG_CONFIG="$pg_config" with_llvm=no >"$build/make.log" 2>&1 \
        || { cat "$build/make.log" >&2; rm -rf "$build"; starling_die "building the decoding plugin failed"; }
    $sudo install -m 755 "$build/starling_pgoutput.so" "$libdir/starling_pgoutput.so" \
        || { rm -rf "$build"; starling_die "installing $libdir/starling_pgoutput.so failed"; }
    echo "$sum" | $sudo tee "$libdir/starling_pgoutput.sha256" >/dev/null
    rm -rf "$build"
    starling_log "decoding plugin starling_pgoutput installed in $libdir"
}

# starling_decoder_conf BINDIR: the postgresql.conf line that lets replication connections load starling_pgoutput
# (`output_plugin_libraries`, PostgreSQL 15.19 and later; nothing for a server without the setting, which would
# refuse to start with an unknown name).
starling_decoder_conf() {
    # Read whole before grep: `grep -q` leaving early would fail the pipe under `pipefail` (postgres gets SIGPIPE).
    local settings
    settings=$(cd / && "$1/postgres" --describe-config 2>/dev/null | cut -f1)
    if grep -qx output_plugin_libraries <<<"$settings"; then
        echo "output_plugin_libraries = 'pgoutput, test_decoding, starling_pgoutput'"
    fi
}

# starling_free_port LOW HIGH: a loopback TCP port nobody listens on.
starling_free_port() {
    local low=$1 high=$2 p
    for _ in $(seq 1 200); do
        p=$(( low + RANDOM % (high - low) ))
        if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return 0; fi
    done
    starling_die "no free port in $low-$high"
}

# starling_start_postgres DIR: initdb and start a throwaway cluster in DIR on a loopback port.
# Sets STARLING_PG_PORT and STARLING_PG_URL; the cluster is stopped and removed on exit.
starling_start_postgres() {
    local dir=$1 bin run=()
    bin=$(starling_pg_bin)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$dir"
        run=(runuser -u postgres --)
    fi
    "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; starling_die "initdb failed"; }
    STARLING_PG_PORT=$(starling_free_port 20000 29999)
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $STARLING_PG_PORT
unix_socket_directories = '$dir'
max_connections = 400
shared_buffers = 256MB
fsync = ${STARLING_PG_FSYNC:-on}
synchronous_commit = on
max_wal_size = 2GB
wal_level = logical
track_commit_timestamp = on
max_worker_processes = 32
max_wal_senders = 64
# Every agent of the suites running at once holds a replication origin per apply worker (up to PostgreSQL 17
# their states take slots of max_replication_slots): with 128, concurrent suites ran out and agents fell back to
# one worker, so the parallel apply's test saw no parts.
max_replication_slots = 256
$(starling_decoder_conf "$bin")
CONF
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null \
        || { cat "$dir/postgres.log" >&2; starling_die "postgres did not start"; }
    STARLING_CLEANUP+=("${run[*]} $bin/pg_ctl -D $dir/data -m immediate stop >/dev/null 2>&1")
    STARLING_PG_URL="postgresql://postgres@127.0.0.1:$STARLING_PG_PORT/postgres"
    export STARLING_PG_PORT STARLING_PG_URL
    starling_log "postgres $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$STARLING_PG_PORT ($dir)"
}

# starling_tmpdir NAME VAR: a private temp dir in variable VAR, removed on exit unless STARLING_KEEP=1. Not
# `VAR=$(starling_tmpdir NAME)`: in a command substitution the removal registered here was lost with the
# subshell, and every ops/test run left its 4 GB behind in /tmp.
starling_tmpdir() {
    local d
    d=$(mktemp -d "/tmp/starling-$1.XXXXXX")
    chmod 755 "$d"
    if [ "${STARLING_KEEP:-0}" != 1 ]; then STARLING_CLEANUP=("rm -rf $d" "${STARLING_CLEANUP[@]}"); fi
    printf -v "$2" '%s' "$d"
}

# The Python tools the tests run (schemathesis for the contract test, httpx with HTTP/2 for its proxy), in a
# venv under the user's cache dir, pinned; created or updated when the pins change. Sets STARLING_VENV.
STARLING_VENV_PINS="schemathesis==4.32.5 httpx[http2]==0.28.1"
starling_need_venv() {
    local venv="${XDG_CACHE_HOME:-$HOME/.cache}/starling/venv"
    starling_need_debs python3-venv python3-pip
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.starling-pins" 2>/dev/null)" != "$STARLING_VENV_PINS" ]; then
        starling_log "creating the test venv in $venv ($STARLING_VENV_PINS)"
        mkdir -p "$(dirname "$venv")"
        /usr/bin/python3 -m venv "$venv" || starling_die "python3 -m venv failed"
        # shellcheck disable=SC2086
        "$venv/bin/pip" install -q --disable-pip-version-check $STARLING_VENV_PINS >&2 \
            || starling_die "pip install $STARLING_VENV_PINS failed"
        echo "$STARLING_VENV_PINS" >"$venv/.starling-pins"
    fi
    STARLING_VENV="$venv"
    export STARLING_VENV
}

# datafold's data-diff, the reconciliation test's independent checker, in a venv of its own: its pins (dbt-core
# 1.x, pydantic 1, urllib3 < 2) must not move schemathesis's. data-diff 0.11.1 needs dbt-core < 2, and the
# newest dbt-core 1.x downloads a parser wheel from GitHub at build time, so dbt-core is pinned to 1.7.19;
# pydantic 2 breaks dbt-core 1.7 (`regex` was removed). Sets STARLING_DATADIFF to the executable.
STARLING_DATADIFF_PINS="data-diff[postgresql]==0.11.1 dbt-core==1.7.19 pydantic==1.10.27"
starling_need_datadiff() {
    local venv="${XDG_CACHE_HOME:-$HOME/.cache}/starling/venv-datadiff"
    starling_need_debs python3-venv python3-pip libpq-dev
    if [ ! -x "$venv/bin/data-diff" ] || [ "$(cat "$venv/.starling-pins" 2>/dev/null)" != "$STARLING_DATADIFF_PINS" ]; then
        starling_log "creating the data-diff venv in $venv ($STARLING_DATADIFF_PINS)"
        mkdir -p "$(dirname "$venv")"
        /usr/bin/python3 -m venv "$venv" || starling_die "python3 -m venv failed"
        # shellcheck disable=SC2086
        "$venv/bin/pip" install -q --disable-pip-version-check $STARLING_DATADIFF_PINS >&2 \
            || starling_die "pip install $STARLING_DATADIFF_PINS failed"
        echo "$STARLING_DATADIFF_PINS" >"$venv/.starling-pins"
    fi
    STARLING_DATADIFF="$venv/bin/data-diff"
    export STARLING_DATADIFF
}
