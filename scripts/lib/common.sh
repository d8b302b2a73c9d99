# Shared by scripts/test, scripts/demo and scripts/bench: system packages and a throwaway
# PostgreSQL. Source it; it defines functions only.

# What building and running Herald needs; scripts/test adds what only the tests use.
HERALD_APT_PACKAGES=(postgresql libpq-dev pkg-config libcurl4-openssl-dev libjemalloc-dev python3 curl)

# Installs what Herald needs to build and test. As root it runs apt-get; otherwise it prints
# the exact command and fails, because a half-installed machine gives confusing build errors.
herald_ensure_packages() {
    local missing=() pkg extra=("$@")
    for pkg in "${HERALD_APT_PACKAGES[@]}" "${extra[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "herald: missing system packages: ${missing[*]}" >&2
        echo "run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
    echo "herald: installing ${missing[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

herald_pg_bindir() {
    if [[ -n "${HERALD_PG_BINDIR:-}" ]]; then
        echo "$HERALD_PG_BINDIR"
        return
    fi
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" ]] && echo "$dir"
    done | sort -V | tail -1
}

herald_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts PostgreSQL as the postgres user on a free loopback port in a fresh directory.
# Sets HERALD_PG_DIR, HERALD_PG_PORT and HERALD_TEST_DATABASE_URL. Extra arguments are
# passed to the server as -c settings (e.g. fsync=off).
herald_pg_start() {
    local bindir
    bindir=$(herald_pg_bindir)
    if [[ -z "$bindir" ]]; then
        echo "herald: no PostgreSQL server binaries found under /usr/lib/postgresql" >&2
        return 1
    fi
    HERALD_PG_BINDIR=$bindir
    HERALD_PG_DIR=$(mktemp -d /tmp/herald-pg.XXXXXX)
    HERALD_PG_PORT=$(herald_free_port)
    chmod 755 "$HERALD_PG_DIR"
    local run=()
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$HERALD_PG_DIR"
        run=(runuser -u postgres --)
    fi
    "${run[@]}" "$bindir/initdb" -D "$HERALD_PG_DIR/data" -U postgres -A trust \
        --no-sync -E UTF8 --locale=C.UTF-8 >"$HERALD_PG_DIR/initdb.log" 2>&1 || {
        cat "$HERALD_PG_DIR/initdb.log" >&2
        return 1
    }
    local opts="-p $HERALD_PG_PORT -k $HERALD_PG_DIR -c listen_addresses=127.0.0.1"
    opts+=" -c max_connections=200"
    local setting
    for setting in "$@"; do
        opts+=" -c $setting"
    done
    "${run[@]}" "$bindir/pg_ctl" -D "$HERALD_PG_DIR/data" -l "$HERALD_PG_DIR/server.log" \
        -o "$opts" -w -t 60 start >/dev/null || {
        cat "$HERALD_PG_DIR/server.log" >&2
        return 1
    }
    HERALD_PG_RUN=("${run[@]}")
    export HERALD_PG_DIR HERALD_PG_PORT HERALD_PG_BINDIR
    export HERALD_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$HERALD_PG_PORT/postgres"
    # The tests stop and start the server to prove recovery; they use this command line.
    export HERALD_TEST_PG_CTL="${run[*]} $bindir/pg_ctl -D $HERALD_PG_DIR/data -l $HERALD_PG_DIR/server.log -o '$opts' -w -t 60"
    echo "herald: PostgreSQL on 127.0.0.1:$HERALD_PG_PORT ($HERALD_PG_DIR)" >&2
}

herald_pg_stop() {
    if [[ -n "${HERALD_PG_DIR:-}" && -d "$HERALD_PG_DIR" ]]; then
        "${HERALD_PG_RUN[@]}" "$HERALD_PG_BINDIR/pg_ctl" -D "$HERALD_PG_DIR/data" -m immediate \
            -w stop >/dev/null 2>&1 || true
        rm -rf "$HERALD_PG_DIR"
    fi
}

# swift build, without SwiftPM's warning about the CMakeLists.txt files inside a dependency's
# sources (swift-distributed-tracing, under .build/checkouts): nothing Herald can change and
# nothing wrong with the build, but it reads like a problem. Every other line passes through.
herald_swift_build() {
    swift build "$@" 2>&1 | awk '
        /^warning: .*found [0-9]+ file\(s\) which are unhandled/ { skip = 1; next }
        skip && /^ +\/.*\/\.build\/checkouts\// { next }
        { skip = 0; print; fflush() }'
}
