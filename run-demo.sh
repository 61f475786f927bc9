#!/usr/bin/env bash
# Bring up a demo InvenioRDM instance (13 unless ISD_RDM says otherwise) with invenio-stats-dashboard and a
# deterministic "legacy" data set, then serve it on http://127.0.0.1:5000.
#   ./run-demo.sh            # reuse the demo instance if it exists
#   ./run-demo.sh --reset    # rebuild it from scratch
#   ./run-demo.sh --no-serve # build/refresh only (used by CI smoke checks)
# Environment: DEMO_RECORDS (300), DEMO_EVENTS (50000), DEMO_SEED (42);
# ISD_RDM=12|14 builds a separate demo of that release (instance
# .demo/instance-rdm14, database invenio_rdm14, index prefix demo-rdm14-);
# ISD_DEMO_NAME=x names such a separate demo for any release (x instead of
# rdm14); ISD_REDIS_PORT selects its Redis (default 6379).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
source scripts/env.sh

RESET=0; SERVE=1
for arg in "$@"; do
  case "$arg" in
    --reset) RESET=1 ;;
    --no-serve) SERVE=0 ;;
    *) echo "usage: $0 [--reset] [--no-serve]" >&2; exit 2 ;;
  esac
done

ensure_venv
scripts/services.sh up
export PATH="$VENV/bin:$PATH"
export INVENIO_INSTANCE_PATH="$ROOT/.demo/instance"
PREFIX=demo- REDIS=(redis-cli -p "${ISD_REDIS_PORT:-6379}")
NAME="${ISD_DEMO_NAME:-}"
[ "$ISD_RDM" = 13 ] || NAME="${NAME:-rdm$ISD_RDM}"
if [ -n "$NAME" ]; then  # a separate demo: its own instance, database, indices
  export INVENIO_INSTANCE_PATH="$ROOT/.demo/instance-$NAME"
  PREFIX="demo-$NAME-"
  export INVENIO_SQLALCHEMY_DATABASE_URI="postgresql+psycopg2://invenio:invenio@127.0.0.1:5432/invenio_$NAME"
fi
export INVENIO_SEARCH_INDEX_PREFIX="$PREFIX"
redis="redis://127.0.0.1:${ISD_REDIS_PORT:-6379}"
export INVENIO_CACHE_REDIS_URL="$redis/0" INVENIO_ACCOUNTS_SESSION_REDIS_URL="$redis/1" \
  INVENIO_RATELIMIT_STORAGE_URI="$redis/3" INVENIO_BROKER_URL="$redis/4" \
  INVENIO_CELERY_BROKER_URL="$redis/4" INVENIO_CELERY_RESULT_BACKEND="$redis/4" \
  INVENIO_QUEUES_BROKER_URL="$redis/5" INVENIO_COMMUNITIES_IDENTITIES_CACHE_REDIS_URL="$redis/2"
mkdir -p "$INVENIO_INSTANCE_PATH"
cp scripts/demo-invenio.cfg "$INVENIO_INSTANCE_PATH/invenio.cfg"
MARKER="$INVENIO_INSTANCE_PATH/.loaded"

step() { echo; echo "==> $*"; }

if [ "$RESET" = 1 ] || [ ! -f "$MARKER" ]; then
  start=$(date +%s)
  step "Resetting the demo instance (database, indices, queues, files)"
  rm -f "$MARKER"
  invenio db destroy --yes-i-know >/dev/null 2>&1 || true
  curl -fsS -XDELETE "http://127.0.0.1:9200/$PREFIX*?expand_wildcards=all" >/dev/null 2>&1 || true
  curl -fsS -XDELETE "http://127.0.0.1:9200/_index_template/$PREFIX*" >/dev/null 2>&1 || true
  curl -fsS -XDELETE "http://127.0.0.1:9200/_template/$PREFIX*" >/dev/null 2>&1 || true
  "${REDIS[@]}" -n 0 flushdb >/dev/null; "${REDIS[@]}" -n 1 flushdb >/dev/null
  "${REDIS[@]}" -n 2 flushdb >/dev/null
  "${REDIS[@]}" -n 4 flushdb >/dev/null; "${REDIS[@]}" -n 5 flushdb >/dev/null
  rm -rf "$INVENIO_INSTANCE_PATH/data"
  invenio db init create
  invenio files location create --default default-location "$INVENIO_INSTANCE_PATH/data"
  invenio index init
  invenio queues declare
  invenio roles create administration >/dev/null 2>&1 || true

  step "Loading the legacy data set (seed ${DEMO_SEED:-42})"
  # Loaded as a *legacy* instance: the extension is off while history is made,
  # so nothing is recorded live and step 3b has real back-filling to do.
  INVENIO_COMMUNITY_STATS_ENABLED=False python -m invenio_stats_dashboard.demo.loader \
    --records "${DEMO_RECORDS:-300}" --events "${DEMO_EVENTS:-50000}" --seed "${DEMO_SEED:-42}" \
    | tee "$INVENIO_INSTANCE_PATH/load-summary.json"
  touch "$MARKER"
  echo "Demo data loaded in $(( $(date +%s) - start )) s"
fi

# The seed's setup steps (setup-and-migration.txt) run here, in order, as
# they become available: 3a custom fields, 3b community events, 3c usage
# event migration, 4 aggregation, 5 caching. Each is idempotent.
step "invenio community-stats --help"
invenio community-stats --help

step "Seed step 3a: community custom fields"
invenio custom-fields communities init stats:dashboard_enabled stats:dashboard_layout
invenio custom-fields communities exists stats:dashboard_layout

step "Seed step 3b: community membership events (backfill)"
invenio community-stats community-events generate
invenio community-stats community-events status

step "Seed step 3c: usage-event migration (the current month waits the routing TTL)"
invenio community-stats usage-events migrate
invenio community-stats usage-events status

step "Legacy usage-event indices"
curl -fsS "http://127.0.0.1:9200/_cat/indices/${PREFIX}events-stats-*?v&s=index&h=index,docs.count,store.size"

if [ "$SERVE" = 1 ]; then
  step "Serving on http://127.0.0.1:5000 (Ctrl-C to stop)"
  cat <<TXT
  Records:      http://127.0.0.1:5000/api/records
  Communities:  http://127.0.0.1:5000/api/communities
  Search:       http://127.0.0.1:9200/_cat/indices/$PREFIX*?v
  (The web UI's assets are built with the dashboard work; the REST API is live.)
TXT
  exec python scripts/serve.py
fi
