#!/usr/bin/env bash
# Bring up a demo InvenioRDM 13 instance with invenio-stats-dashboard and a
# deterministic "legacy" data set, then serve it on http://127.0.0.1:5000.
#   ./run-demo.sh            # reuse the demo instance if it exists
#   ./run-demo.sh --reset    # rebuild it from scratch
#   ./run-demo.sh --no-serve # build/refresh only (used by CI smoke checks)
# Environment: DEMO_RECORDS (300), DEMO_EVENTS (50000), DEMO_SEED (42).
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
mkdir -p "$INVENIO_INSTANCE_PATH"
cp scripts/demo-invenio.cfg "$INVENIO_INSTANCE_PATH/invenio.cfg"
MARKER="$INVENIO_INSTANCE_PATH/.loaded"

step() { echo; echo "==> $*"; }

if [ "$RESET" = 1 ] || [ ! -f "$MARKER" ]; then
  start=$(date +%s)
  step "Resetting the demo instance (database, indices, queues, files)"
  rm -f "$MARKER"
  invenio db destroy --yes-i-know >/dev/null 2>&1 || true
  curl -fsS -XDELETE "http://127.0.0.1:9200/demo-*?expand_wildcards=all" >/dev/null 2>&1 || true
  curl -fsS -XDELETE "http://127.0.0.1:9200/_index_template/demo-*" >/dev/null 2>&1 || true
  curl -fsS -XDELETE "http://127.0.0.1:9200/_template/demo-*" >/dev/null 2>&1 || true
  redis-cli -n 0 flushdb >/dev/null; redis-cli -n 1 flushdb >/dev/null
  redis-cli -n 4 flushdb >/dev/null; redis-cli -n 5 flushdb >/dev/null
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

# --- Seed step 4 (aggregations; a block of its own, added with the aggregation
# engine — keep it after 3c when the steps above are reorganised) -------------
step "Seed step 4: catch-up aggregation (every community with records, and global)"
invenio community-stats enable-dashboards --record-threshold 1
AGG_START=$(date +%s)
invenio community-stats aggregate --force --until-caught-up --no-show-progress
echo "Catch-up aggregation took $(( $(date +%s) - AGG_START )) s"
invenio community-stats status
step "Aggregated documents: physics, records snapshot of the last two days (read)"
invenio community-stats read --community-id physics \
  --query-type community-record-snapshot-added | sed -n '1,40p'
# --- end of seed step 4 ------------------------------------------------------

step "Legacy usage-event indices"
curl -fsS "http://127.0.0.1:9200/_cat/indices/demo-events-stats-*?v&s=index&h=index,docs.count,store.size"

if [ "$SERVE" = 1 ]; then
  step "Serving on http://127.0.0.1:5000 (Ctrl-C to stop)"
  cat <<TXT
  Records:      http://127.0.0.1:5000/api/records
  Communities:  http://127.0.0.1:5000/api/communities
  Search:       http://127.0.0.1:9200/_cat/indices/demo-*?v
  (The web UI's assets are built with the dashboard work; the REST API is live.)
TXT
  exec python scripts/serve.py
fi
