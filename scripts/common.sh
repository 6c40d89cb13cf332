# Shared set-up for scripts/stack and scripts/test: installs what is missing (pinned, idempotent)
# and starts PostgreSQL and a Kafka-compatible broker when none is reachable.
# Sourced, not run. Everything it starts is stopped by `stop_started` (the callers trap EXIT).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STACK_STATE_DIR:-$ROOT/target/stack}"
TANSU_VERSION="0.6.0"
mkdir -p "$STATE"
STARTED_PIDS=()
PRIVATE_PGDATA=""

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# tcp_open HOST PORT: true when something accepts connections there.
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages the build and the scripts need: a C toolchain and zlib for librdkafka,
# pkg-config, and the PostgreSQL client tools.
ensure_packages() {
  local missing=()
  command -v cc >/dev/null || missing+=(build-essential)
  command -v make >/dev/null || missing+=(make)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v python3 >/dev/null || missing+=(python3)
  command -v curl >/dev/null || missing+=(curl)
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v pg_isready >/dev/null || missing+=(postgresql-client)
  dpkg -s zlib1g-dev >/dev/null 2>&1 || missing+=(zlib1g-dev)
  dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}

ensure_tansu() {
  if [ "$(tansu --version 2>/dev/null)" != "tansu $TANSU_VERSION" ]; then
    say "installing the Tansu broker $TANSU_VERSION (once; takes ~10 minutes on 2 cores)"
    cargo install tansu --locked --version "$TANSU_VERSION" --features dynostore,libsql
  fi
}

# ensure_venv DIR REQUIREMENTS: a virtualenv at DIR with exactly the pinned REQUIREMENTS (a pip
# freeze), rebuilt only when that file changes.
ensure_venv() {
  local venv="$1" requirements="$2" pins
  pins="$(sha256sum "$requirements" | cut -d' ' -f1)"
  [ "$(cat "$venv/.pins" 2>/dev/null)" = "$pins" ] && return
  python3 -c 'import ensurepip' 2>/dev/null || {
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  }
  say "installing ${requirements#"$ROOT"/} into ${venv#"$ROOT"/}"
  python3 -m venv --clear "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
  echo "$pins" >"$venv/.pins"
}

# Sets PG_SERVER_URL to a reachable server: $DATABASE_URL, else 127.0.0.1:5432, else a private
# cluster started from the machine's PostgreSQL binaries under $STATE/pg.
ensure_postgres() {
  local candidate="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  if pg_isready -q -d "$candidate" -t 3; then
    PG_SERVER_URL="$candidate"
    say "PostgreSQL: using ${candidate%%\?*}" ; return
  fi
  say "no PostgreSQL at $candidate; starting a private cluster in $STATE/pg"
  local bindir
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$bindir" ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
    bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  fi
  local port="${PRIVATE_PG_PORT:-55432}" run=()
  # initdb refuses to run as root; the cluster then belongs to the postgres user.
  [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
  PRIVATE_PGDATA="$STATE/pg"
  if [ ! -f "$PRIVATE_PGDATA/PG_VERSION" ]; then
    mkdir -p "$PRIVATE_PGDATA" && [ "$(id -u)" = 0 ] && chown postgres: "$PRIVATE_PGDATA" "$STATE"
    "${run[@]}" "$bindir/initdb" -D "$PRIVATE_PGDATA" -U postgres --auth=trust >/dev/null
  fi
  PG_CTL=("${run[@]}" "$bindir/pg_ctl" -D "$PRIVATE_PGDATA")
  "${PG_CTL[@]}" -l "$PRIVATE_PGDATA/server.log" -w \
    -o "-p $port -k $PRIVATE_PGDATA -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
  PG_SERVER_URL="postgres://postgres@127.0.0.1:$port/postgres"
  PG_STOP=("${PG_CTL[@]}" -m fast stop)
}

# Sets BROKERS to a reachable Kafka bootstrap address: $KAFKA_BROKERS, else a Tansu broker
# started here with the storage given as $1 (memory://tansu/ or sqlite://FILE).
ensure_kafka() {
  local storage="$1"
  if [ -n "${KAFKA_BROKERS:-}" ]; then
    local first="${KAFKA_BROKERS%%,*}"
    if tcp_open "${first%:*}" "${first##*:}"; then
      BROKERS="$KAFKA_BROKERS"; say "Kafka: using $BROKERS"; return
    fi
    say "no broker at $KAFKA_BROKERS; starting Tansu"
  fi
  ensure_tansu
  local port="${TANSU_PORT:-$(free_port)}"
  ( cd "$STATE" && exec tansu broker --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine "$storage" ) \
      >"$STATE/tansu.log" 2>&1 &
  STARTED_PIDS+=($!)
  for _ in $(seq 100); do tcp_open 127.0.0.1 "$port" && break; sleep 0.1; done
  tcp_open 127.0.0.1 "$port" || { cat "$STATE/tansu.log" >&2; echo "Tansu did not start" >&2; exit 1; }
  BROKERS="127.0.0.1:$port"
  say "Kafka: Tansu $TANSU_VERSION on $BROKERS ($storage)"
}

# Stops what was started, in list order (services before the broker), then the private cluster.
stop_started() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$PRIVATE_PGDATA" ]; then "${PG_STOP[@]}" >/dev/null 2>&1 || true; fi
}

# database_url NAME: the server URL with another database.
database_url() {
  local base="${PG_SERVER_URL%%\?*}" query=""
  [[ "$PG_SERVER_URL" == *\?* ]] && query="?${PG_SERVER_URL#*\?}"
  echo "${base%/*}/$1$query"
}

# build_services PROFILE: builds both service binaries (and the bench tool) and sets BIN.
build_services() {
  local flag=(); [ "$1" = release ] && flag=(--release)
  say "building the services ($1)"
  cargo build --locked "${flag[@]}" -p command-service -p query-service -p bench
  BIN="$ROOT/target/$1"
}

# start_service BINARY DB PORT: starts it against $PG_SERVER_URL and $BROKERS and waits until it
# is ready; its pid goes first in STARTED_PIDS (stopped first).
start_service() {
  launch_service "$@"
  local url="http://127.0.0.1:$3"
  for _ in $(seq 600); do
    curl -fsS "$url/readyz" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "$1 at $url is not ready; see the log above" >&2
  exit 1
}

# launch_service BINARY DB PORT: starts it without waiting for it to be ready.
launch_service() {
  export KAFKA_BROKERS="$BROKERS"
  DATABASE_URL="$(database_url "$2")" HTTP_ADDR="127.0.0.1:$3" "$BIN/$1" &
  STARTED_PIDS=("$!" "${STARTED_PIDS[@]}")
}

# start_services COMMAND_DB QUERY_DB COMMAND_PORT QUERY_PORT
start_services() {
  start_service command-service "$1" "$3"
  start_service query-service "$2" "$4"
}
