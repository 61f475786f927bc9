#!/usr/bin/env bash
# Start, stop or inspect the three real services the tests and the demo need:
# OpenSearch (from Maven Central, run as a non-root user), PostgreSQL and Redis
# (Debian packages). Idempotent: `up` reuses what already answers, `down` stops
# only what this script started (it keeps pid files under $ISD_SERVICES_DIR).
#
#   scripts/services.sh up|down|status
#
# Environment (all optional):
#   OPENSEARCH_VERSION   2.19.6        OPENSEARCH_HEAP   2g
#   ISD_SERVICES_DIR     <repo>/.services   (runtime data, git-ignored)
#   ISD_CACHE_DIR        <repo>/.cache      (downloaded distribution, git-ignored)
#   ISD_DB_USER / ISD_DB_PASSWORD   invenio / invenio
#   ISD_TEST_DB          invenio_test       (an extra database for a parallel test run)
#   ISD_REDIS_PORT       6379               (another port: a Redis of this checkout's own)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OPENSEARCH_VERSION="${OPENSEARCH_VERSION:-2.19.6}"
OPENSEARCH_HEAP="${OPENSEARCH_HEAP:-2g}"
SERVICES_DIR="${ISD_SERVICES_DIR:-$ROOT/.services}"
CACHE_DIR="${ISD_CACHE_DIR:-$ROOT/.cache}"
DB_USER="${ISD_DB_USER:-invenio}"
DB_PASSWORD="${ISD_DB_PASSWORD:-invenio}"
TEST_DB="${ISD_TEST_DB:-invenio_test}"
REDIS_PORT="${ISD_REDIS_PORT:-6379}"
OS_USER=opensearch
# OpenSearch runs as its own user, which must be able to reach its files; a
# checkout under a private folder (e.g. /root) gets its runtime in /var/tmp.
OS_BASE="$SERVICES_DIR"
if id opensearch >/dev/null 2>&1 && ! runuser -u opensearch -- test -x "$ROOT" 2>/dev/null; then
  OS_BASE="/var/tmp/isd-opensearch-$(printf %s "$ROOT" | md5sum | cut -c1-8)"
fi
OS_HOME="$OS_BASE/opensearch-$OPENSEARCH_VERSION"
OS_ZIP="$CACHE_DIR/opensearch/opensearch-$OPENSEARCH_VERSION.zip"
OS_URL="http://127.0.0.1:9200"

log() { echo "[services] $*" >&2; }
die() { echo "[services] error: $*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Debian packages ---------------------------------------------------------
need_pkgs=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_pkgs+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
command -v java >/dev/null 2>&1 || need_pkgs+=(openjdk-17-jre-headless)
command -v unzip >/dev/null 2>&1 || need_pkgs+=(unzip)
install_pkgs() {
  [ ${#need_pkgs[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${need_pkgs[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
}

# --- OpenSearch ---------------------------------------------------------------
os_up() { curl -fsS "$OS_URL" >/dev/null 2>&1; }

fetch_opensearch() {
  [ -f "$OS_ZIP" ] && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn is needed to fetch OpenSearch from Maven Central"
  log "fetching OpenSearch $OPENSEARCH_VERSION from Maven Central"
  mvn -q -B dependency:copy \
    -Dartifact="org.opensearch.distribution.integ-test-zip:opensearch:$OPENSEARCH_VERSION:zip" \
    -DoutputDirectory="$CACHE_DIR/opensearch" || die "could not download OpenSearch $OPENSEARCH_VERSION"
}


# The integ-test-zip ships only the transport module. InvenioRDM's mappings
# need analysis-common, geo, percolator (component templates) and more;
# invenio-stats and our migration need painless and reindex: those modules come from Maven Central as jars (with their
# dependencies), and we write their plugin descriptors.
#   folder        artifact              class                                         extends
OS_MODULES="lang-painless:lang-painless:org.opensearch.painless.PainlessPlugin:
analysis-common:analysis-common:org.opensearch.analysis.common.CommonAnalysisPlugin:lang-painless
geo:geo:org.opensearch.geo.GeoModulePlugin:
reindex:reindex-client:org.opensearch.index.reindex.ReindexPlugin:
mapper-extras:mapper-extras-client:org.opensearch.index.mapper.MapperExtrasPlugin:
percolator:percolator-client:org.opensearch.percolator.PercolatorPlugin:
parent-join:parent-join-client:org.opensearch.join.ParentJoinPlugin:"

install_opensearch_modules() {
  local pom="$ROOT/scripts/opensearch/pom.xml" line folder artifact class extends dir
  while IFS=: read -r folder artifact class extends; do
    dir="$OS_HOME/modules/$folder"
    [ -f "$dir/plugin-descriptor.properties" ] && continue
    log "adding OpenSearch module $folder"
    mkdir -p "$dir"
    mvn -q -B -f "$pom" dependency:copy-dependencies -Dmodule="$artifact" \
      -Dos.version="$OPENSEARCH_VERSION" -DoutputDirectory="$dir" >/dev/null \
      || die "could not fetch OpenSearch module $artifact $OPENSEARCH_VERSION"
    for jar in "$dir"/*.jar; do   # drop what the server already has on its classpath
      [ -e "$OS_HOME/lib/$(basename "$jar")" ] && rm -f "$jar"
    done
    cat > "$dir/plugin-descriptor.properties" <<DESC
description=$folder module (assembled from Maven Central)
version=$OPENSEARCH_VERSION
name=$folder
classname=$class
java.version=11
opensearch.version=$OPENSEARCH_VERSION
extended.plugins=$extends
has.native.controller=false
DESC
    if [ "$folder" = lang-painless ]; then
      cat > "$dir/plugin-security.policy" <<'POLICY'
grant {
  permission java.lang.RuntimePermission "createClassLoader";
  permission java.lang.RuntimePermission "getClassLoader";
};
POLICY
    fi
  done <<< "$OS_MODULES"
}

start_opensearch() {
  if os_up; then log "OpenSearch already answers on $OS_URL"; return 0; fi
  fetch_opensearch
  if ! id "$OS_USER" >/dev/null 2>&1; then
    as_root useradd --system --no-create-home --shell /usr/sbin/nologin "$OS_USER"
    if ! runuser -u "$OS_USER" -- test -x "$ROOT" 2>/dev/null; then
      OS_BASE="/var/tmp/isd-opensearch-$(printf %s "$ROOT" | md5sum | cut -c1-8)"
      OS_HOME="$OS_BASE/opensearch-$OPENSEARCH_VERSION"
    fi
  fi
  [ "$OS_BASE" = "$SERVICES_DIR" ] || log "user $OS_USER cannot reach $ROOT; OpenSearch runs from $OS_BASE"
  if [ ! -x "$OS_HOME/bin/opensearch" ]; then
    mkdir -p "$OS_BASE"
    unzip -q -o "$OS_ZIP" -d "$OS_BASE"
    cat >> "$OS_HOME/config/opensearch.yml" <<EOF
cluster.name: isd-dev
node.name: isd-node
discovery.type: single-node
network.host: 127.0.0.1
http.port: 9200
path.data: $OS_BASE/opensearch-data
path.logs: $OS_BASE/opensearch-logs
action.auto_create_index: true
EOF
  fi
  install_opensearch_modules
  mkdir -p "$OS_BASE/opensearch-data" "$OS_BASE/opensearch-logs" "$OS_BASE/opensearch-run"
  as_root chown -R "$OS_USER" "$OS_HOME" "$OS_BASE/opensearch-data" "$OS_BASE/opensearch-logs" "$OS_BASE/opensearch-run"
  # OpenSearch refuses to run as root, so it runs as its own user; every folder
  # above the runtime tree must be traversable by that user.
  runuser -u "$OS_USER" -- test -r "$OS_HOME/config/opensearch.yml" \
    || die "user $OS_USER cannot read $OS_HOME"
  log "starting OpenSearch $OPENSEARCH_VERSION (heap $OPENSEARCH_HEAP)"
  local java_home
  java_home="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
  rm -f "$OS_BASE/opensearch-run/opensearch.pid"  # a stale one would read as "exited"
  runuser -u "$OS_USER" -- env OPENSEARCH_JAVA_HOME="$java_home" \
    OPENSEARCH_JAVA_OPTS="-Xms$OPENSEARCH_HEAP -Xmx$OPENSEARCH_HEAP" \
    "$OS_HOME/bin/opensearch" -d -p "$OS_BASE/opensearch-run/opensearch.pid" \
    >"$SERVICES_DIR/opensearch-start.log" 2>&1 </dev/null \
    || die "OpenSearch did not start (see $OS_BASE/opensearch-logs)"
  touch "$SERVICES_DIR/opensearch.started-by-us"
  for _ in $(seq 1 120); do
    [ -f "$OS_BASE/opensearch-run/opensearch.pid" ] && ! kill -0 "$(cat "$OS_BASE/opensearch-run/opensearch.pid")" 2>/dev/null \
      && die "OpenSearch exited (see $OS_BASE/opensearch-logs)"
    if curl -fsS "$OS_URL/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1; then
      log "OpenSearch is up"; return 0
    fi
    sleep 1
  done
  die "OpenSearch did not become healthy within 120 s (see $OS_BASE/opensearch-logs)"
}

stop_opensearch() {
  local pidf="$OS_BASE/opensearch-run/opensearch.pid"
  [ -f "$SERVICES_DIR/opensearch.started-by-us" ] && [ -f "$pidf" ] || return 0
  log "stopping OpenSearch"
  kill "$(cat "$pidf")" 2>/dev/null || true
  for _ in $(seq 1 30); do os_up || break; sleep 1; done
  rm -f "$pidf" "$SERVICES_DIR/opensearch.started-by-us"
}

# --- PostgreSQL ---------------------------------------------------------------
pg_version() { pg_lsclusters -h 2>/dev/null | awk 'NR==1{print $1}'; }
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

start_postgres() {
  if ! pg_up; then
    local v; v="$(pg_version)"
    [ -n "$v" ] || { as_root pg_createcluster 15 main >/dev/null; v=15; }
    log "starting PostgreSQL $v"
    as_root pg_ctlcluster "$v" main start
    touch "$SERVICES_DIR/postgres.started-by-us"
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    pg_up || die "PostgreSQL did not start"
  else
    log "PostgreSQL already answers on 127.0.0.1:5432"
  fi
  # A login role that may create the per-run test databases.
  runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname='$DB_USER'" | grep -q 1 \
    || runuser -u postgres -- psql -qc "CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD'"
  for db in invenio "$TEST_DB"; do
    runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
      || runuser -u postgres -- createdb -O "$DB_USER" "$db"
  done
}

stop_postgres() {
  [ -f "$SERVICES_DIR/postgres.started-by-us" ] || return 0
  log "stopping PostgreSQL"
  as_root pg_ctlcluster "$(pg_version)" main stop || true
  rm -f "$SERVICES_DIR/postgres.started-by-us"
}

# --- Redis ----------------------------------------------------------------------
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

start_redis() {
  if redis_up; then log "Redis already answers on 127.0.0.1:$REDIS_PORT"; return 0; fi
  log "starting Redis on port $REDIS_PORT"
  mkdir -p "$SERVICES_DIR/redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
    --dir "$SERVICES_DIR/redis" --pidfile "$SERVICES_DIR/redis.pid" \
    --logfile "$SERVICES_DIR/redis/redis.log" --save "" --appendonly no
  for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
  redis_up || die "Redis did not start"
  touch "$SERVICES_DIR/redis.started-by-us"
}

stop_redis() {
  [ -f "$SERVICES_DIR/redis.started-by-us" ] || return 0
  log "stopping Redis"
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -f "$SERVICES_DIR/redis.started-by-us" "$SERVICES_DIR/redis.pid"
}

status() {
  local rc=0
  if os_up; then echo "opensearch: up ($(curl -fsS "$OS_URL" | grep -o '"number" *: *"[^"]*"' | head -1))"; else echo "opensearch: down"; rc=1; fi
  if pg_up; then echo "postgresql: up"; else echo "postgresql: down"; rc=1; fi
  if redis_up; then echo "redis: up"; else echo "redis: down"; rc=1; fi
  return $rc
}

case "${1:-}" in
  up)
    mkdir -p "$SERVICES_DIR" "$CACHE_DIR"
    install_pkgs
    start_postgres
    start_redis
    start_opensearch
    status ;;
  down) stop_opensearch; stop_redis; stop_postgres ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
