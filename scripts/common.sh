# Shared set-up for scripts/stack and scripts/test: installs what is missing (pinned, idempotent)
# and starts PostgreSQL and Apache Kafka when none is reachable.
# Sourced, not run. Everything it starts is stopped by `stop_started` (the callers trap EXIT).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STACK_STATE_DIR:-$ROOT/target/stack}"
# One Apache Kafka release everywhere: here, scripts/kafka/pom.xml, docker-compose.yml and
# deploy/k8s/overlays/local/kafka.yaml.
APACHE_KAFKA_VERSION="4.1.1"
# The broker's jars live outside the work tree, shared by every clone on the machine.
BROKER_CACHE="${BROKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orders-platform/kafka-$APACHE_KAFKA_VERSION}"
mkdir -p "$STATE"
STARTED_PIDS=()
PRIVATE_PGDATA=""
THROWAWAY_DIRS=()

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
  # The browser the tests render pages in (the machine cannot download one of its own).
  command -v chromium >/dev/null || missing+=(chromium)
  dpkg -s zlib1g-dev >/dev/null 2>&1 || missing+=(zlib1g-dev)
  dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
  if [ ${#missing[@]} -gt 0 ]; then install_debian_packages "${missing[@]}"; fi
}

install_debian_packages() {
  say "installing Debian packages: $*"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# The broker's jars: kafka_2.13 and its runtime dependencies, copied by Maven from Maven Central
# into $BROKER_CACHE/libs once per pinned version (a no-op afterwards).
ensure_kafka_install() {
  local pom="$ROOT/scripts/kafka/pom.xml" pins
  pins="$(cat "$pom" "$ROOT/scripts/kafka/log4j2.properties" | sha256sum | cut -d' ' -f1)"
  [ "$(cat "$BROKER_CACHE/.pins" 2>/dev/null)" = "$pins" ] && return
  command -v java >/dev/null || install_debian_packages openjdk-17-jre-headless
  command -v mvn >/dev/null || install_debian_packages maven
  say "fetching Apache Kafka $APACHE_KAFKA_VERSION with Maven into $BROKER_CACHE (once)"
  rm -rf "$BROKER_CACHE" && mkdir -p "$BROKER_CACHE"
  mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$BROKER_CACHE/libs" >"$BROKER_CACHE/maven.log" 2>&1 ||
    { cat "$BROKER_CACHE/maven.log" >&2; echo "could not fetch Apache Kafka (log above)" >&2; exit 1; }
  cp "$ROOT/scripts/kafka/log4j2.properties" "$BROKER_CACHE/"
  echo "$pins" >"$BROKER_CACHE/.pins"
}

# ensure_venv DIR REQUIREMENTS: a virtualenv at DIR with exactly the pinned REQUIREMENTS (a pip
# freeze), rebuilt only when that file changes.
ensure_venv() {
  local venv="$1" requirements="$2" pins
  pins="$(sha256sum "$requirements" | cut -d' ' -f1)"
  [ "$(cat "$venv/.pins" 2>/dev/null)" = "$pins" ] && return
  python3 -c 'import ensurepip' 2>/dev/null || install_debian_packages python3-venv
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
  # The server's binaries: postgresql-client alone also makes /usr/lib/postgresql/*/bin, so look
  # for initdb itself.
  local bindir
  bindir="$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -z "$bindir" ]; then
    install_debian_packages postgresql
    bindir="$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)"
  fi
  bindir="$(dirname "$bindir")"
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

# kafka_answers HOST:PORT: true when a Kafka broker there answers a metadata request.
kafka_answers() { python3 "$ROOT/scripts/kafka/metadata-probe.py" "$1"; }

# Sets BROKERS to a reachable Kafka bootstrap address: $KAFKA_BROKERS when a broker there answers,
# else a single-node Apache Kafka started here on 127.0.0.1:$BROKER_PORT (default: a free port).
# With DIR its configuration, data and log live there and survive a restart (scripts/stack);
# without, in a throw-away directory removed when the script ends (tests, benchmark).
ensure_kafka() {
  if [ -n "${KAFKA_BROKERS:-}" ]; then
    if kafka_answers "${KAFKA_BROKERS%%,*}"; then
      BROKERS="$KAFKA_BROKERS"; say "Kafka: using $BROKERS"; return
    fi
    say "no broker answers at $KAFKA_BROKERS; starting Apache Kafka $APACHE_KAFKA_VERSION"
  fi
  local dir="${1:-}"
  if [ -z "$dir" ]; then
    dir="$(mktemp -d "${TMPDIR:-/tmp}/orders-kafka.XXXXXX")"
    THROWAWAY_DIRS+=("$dir")
  fi
  ensure_kafka_install
  kafka_configure "$dir" "${BROKER_PORT:-$(free_port)}" "${BROKER_CONTROLLER_PORT:-$(free_port)}"
  "$dir/run-broker" &
  STARTED_PIDS+=($!)
  kafka_wait "$BROKERS" "$dir/broker.log"
  say "Kafka: Apache Kafka $APACHE_KAFKA_VERSION on $BROKERS (data: $dir/data, log: $dir/broker.log)"
}

# kafka_configure DIR PORT CONTROLLER_PORT: a single-node KRaft broker in DIR: its
# server.properties, storage in DIR/data (formatted unless it already is), and DIR/run-broker,
# which runs it in the foreground (the chaos run restarts the broker with it). Sets BROKERS.
kafka_configure() {
  local dir="$1" port="$2" controller_port="$3" classpath="$BROKER_CACHE/libs/*"
  mkdir -p "$dir/data"
  # One node that is broker and controller, both listeners on loopback. The internal topics get
  # one partition and one replica and the group coordinator no initial delay, so the node starts
  # in seconds. The services create their topics (auto-creation is off, as in
  # docker-compose.yml). Durability is Kafka's default: an acknowledged write is in the page
  # cache and the OS flushes it (no log.flush.* settings), so a killed broker loses nothing.
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
auto.create.topics.enable=false
num.partitions=1
offsets.topic.num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cluster_id
    # A random id in Kafka's form (base64url of a UUID); like Kafka's own, never one that starts
    # with "-", which the storage tool would take for an option.
    cluster_id="$(python3 -c 'import base64, uuid
while (i := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"): pass
print(i)')"
    java -cp "$classpath" -Dlog4j2.configurationFile="$BROKER_CACHE/log4j2.properties" \
      -Dkafka.log.file="$dir/broker.log" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$dir/server.properties" >>"$dir/broker.log" 2>&1 ||
      { tail -n 30 "$dir/broker.log" >&2; echo "formatting Kafka storage in $dir/data failed" >&2; exit 1; }
  fi
  # The JVM settings of Kafka's own kafka-server-start.sh, with a smaller heap for one node.
  cat >"$dir/run-broker" <<EOF
#!/usr/bin/env bash
exec java -Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \\
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \\
  -Dlog4j2.configurationFile="$BROKER_CACHE/log4j2.properties" -Dkafka.log.file="$dir/broker.log" \\
  -cp "$classpath" kafka.Kafka "$dir/server.properties" >>"$dir/broker.log" 2>&1
EOF
  chmod +x "$dir/run-broker"
  BROKERS="127.0.0.1:$port"
}

# kafka_wait HOST:PORT LOG: waits (up to 60 s) until the broker answers metadata; on failure
# shows and names its log.
kafka_wait() {
  for _ in $(seq 300); do kafka_answers "$1" && return; sleep 0.2; done
  tail -n 40 "$2" >&2
  echo "Apache Kafka did not answer metadata at $1 within 60 s; its log: $2" >&2
  exit 1
}

# Stops what was started, in list order (services before the broker), then the private cluster.
stop_started() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$PRIVATE_PGDATA" ]; then "${PG_STOP[@]}" >/dev/null 2>&1 || true; fi
  local dir
  for dir in "${THROWAWAY_DIRS[@]}"; do rm -rf "$dir"; done
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

# dev_auth: unless AUTH_JWT_HS256_SECRET is set, exports the local development secret (made once,
# kept in $STATE/dev-auth.env) with its issuer and audience, for AUTH_MODE=jwt on a developer's
# machine; scripts/dev-token signs tokens with the same.
dev_auth() {
  export AUTH_JWT_ISSUER="${AUTH_JWT_ISSUER:-http://127.0.0.1/dev-issuer}"
  export AUTH_JWT_AUDIENCE="${AUTH_JWT_AUDIENCE:-order-platform}"
  [ -n "${AUTH_JWT_HS256_SECRET:-}" ] && return
  local file="$STATE/dev-auth.env" draft
  if [ ! -f "$file" ]; then
    # Written aside and moved without overwriting: two first runs end up with one secret.
    draft="$(umask 077 && mktemp "$STATE/dev-auth.XXXXXX")"
    printf 'AUTH_JWT_HS256_SECRET=%s\n' "$(head -c 32 /dev/urandom | base64 -w0)" >"$draft"
    mv -n "$draft" "$file" || true
    rm -f "$draft"
  fi
  set -a && source "$file" && set +a
}

# build_web: installs the frontends' toolchain (pinned by web/package-lock.json, from the npm
# registry; again whenever the lock file changes) and builds web/dist.
build_web() {
  say "building the frontends (web/)"
  local pins stamp="$ROOT/web/node_modules/.lock-sha256"
  pins="$(sha256sum "$ROOT/web/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$pins" ]; then
    (cd "$ROOT/web" && npm ci --no-audit --no-fund --loglevel=error) && echo "$pins" >"$stamp"
  fi
  (cd "$ROOT/web" && npm run --silent build)
}

# serve_web PORT COMMAND_URL QUERY_URL: serves web/dist and waits until it answers.
serve_web() {
  (cd "$ROOT/web" && WEB_PORT="$1" COMMAND_URL="$2" QUERY_URL="$3" exec node serve.mjs) &
  local pid="$!"
  STARTED_PIDS=("$pid" "${STARTED_PIDS[@]}")
  for _ in $(seq 100); do
    # Ours, not another server that holds the port (ours would have exited).
    kill -0 "$pid" 2>/dev/null || break
    curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "the web server on port $1 did not answer" >&2
  exit 1
}

# start_services COMMAND_DB QUERY_DB COMMAND_PORT QUERY_PORT
start_services() {
  start_service command-service "$1" "$3"
  start_service query-service "$2" "$4"
}
