#!/usr/bin/env bash
# Bring up a demo InvenioRDM instance (13 unless ISD_RDM says otherwise) with invenio-stats-dashboard and a
# deterministic "legacy" data set, then serve it on http://127.0.0.1:5000.
#   ./run-demo.sh            # reuse the demo instance if it exists
#   ./run-demo.sh --reset    # rebuild it from scratch
#   ./run-demo.sh --no-serve # build/refresh only (used by CI smoke checks)
# Environment: DEMO_RECORDS (300), DEMO_EVENTS (50000), DEMO_SEED (42),
# DEMO_WORKERS (2 loader processes);
# ISD_RDM=12|14 builds a separate demo of that release (instance
# .demo/instance-rdm14, database invenio_rdm14, index prefix demo-rdm14-);
# ISD_DEMO_NAME=x names such a separate demo for any release (x instead of
# rdm14); ISD_REDIS_PORT selects its Redis (default 6379).
# The terminal shows the steps, progress and status tables; everything the
# applications log goes to .demo/demo.log.
set -Eeuo pipefail  # -E: the ERR trap below also fires inside functions
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

DEMO_DIR="$ROOT/.demo"
LOG="$DEMO_DIR/demo.log"
TIMINGS="$DEMO_DIR/timings.tsv"
export INVENIO_INSTANCE_PATH="$DEMO_DIR/instance"
PREFIX=demo- REDIS_PORT="${ISD_REDIS_PORT:-6379}"
NAME="${ISD_DEMO_NAME:-}"
[ "$ISD_RDM" = 13 ] || NAME="${NAME:-rdm$ISD_RDM}"
if [ -n "$NAME" ]; then  # a separate demo: its own instance, database, indices
  export INVENIO_INSTANCE_PATH="$DEMO_DIR/instance-$NAME"
  PREFIX="demo-$NAME-"
  export INVENIO_SQLALCHEMY_DATABASE_URI="postgresql+psycopg2://invenio:invenio@127.0.0.1:5432/invenio_$NAME"
fi
export INVENIO_SEARCH_INDEX_PREFIX="$PREFIX"
redis="redis://127.0.0.1:$REDIS_PORT"
export INVENIO_CACHE_REDIS_URL="$redis/0" INVENIO_ACCOUNTS_SESSION_REDIS_URL="$redis/1" \
  INVENIO_RATELIMIT_STORAGE_URI="$redis/3" INVENIO_BROKER_URL="$redis/4" \
  INVENIO_CELERY_BROKER_URL="$redis/4" INVENIO_CELERY_RESULT_BACKEND="$redis/4" \
  INVENIO_QUEUES_BROKER_URL="$redis/5" INVENIO_COMMUNITIES_IDENTITIES_CACHE_REDIS_URL="$redis/2"
MARKER="$INVENIO_INSTANCE_PATH/.loaded"
mkdir -p "$INVENIO_INSTANCE_PATH"
: > "$LOG"; : > "$TIMINGS"; rm -f "$TIMINGS.load"
RUN_START=$EPOCHREALTIME
echo "The applications' log of this run: $LOG"

# --- steps: a header, the time each one took, the log's tail on failure -------
STEP=""; STEP_START=""
load() { cut -d' ' -f1 /proc/loadavg; }  # the machine's 1-minute load average
step() {
  STEP="$1"; STEP_START=$EPOCHREALTIME
  echo; echo "==> $1"
  echo "=== $(date '+%F %T') $1" >> "$LOG"
}
step_done() {
  local seconds
  seconds=$(awk -v a="$STEP_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  printf '%s\t%s\t%s\n' "$STEP" "$seconds" "$(load)" >> "$TIMINGS"
  printf '    (%s s)\n' "${seconds%.*}"
}
on_error() {
  echo >&2
  echo "Error: step \"$STEP\" failed. The end of $LOG:" >&2
  tail -n 25 "$LOG" | cut -c1-300 | sed 's/^/    /' >&2
}
trap on_error ERR
# Run a command: its output on the terminal, its log lines and warnings in the log.
quiet() { "$@" 2>>"$LOG"; }

step "Python environment and services (OpenSearch, PostgreSQL, Redis; the first run takes minutes)"
quiet ensure_venv
quiet scripts/services.sh up
export PATH="$VENV/bin:$PATH"
cp scripts/demo-invenio.cfg "$INVENIO_INSTANCE_PATH/invenio.cfg"
step_done

if [ "$RESET" = 1 ] || [ ! -f "$MARKER" ]; then
  step "Loading the legacy data set (seed ${DEMO_SEED:-42}): new instance storage, records, events"
  rm -f "$MARKER"
  # Only what the demo owns: its Redis DBs (0-5, the response cache 7 and the
  # job-flag registry 8: a rebuilt demo starts without old entries or
  # first-run flags); the loader's --reset drops the database and the demo's
  # own indices and templates.
  for n in 0 1 2 3 4 5 7 8; do redis-cli -p "$REDIS_PORT" -n "$n" flushdb >/dev/null; done
  rm -rf "$INVENIO_INSTANCE_PATH/data"
  # A *legacy* instance: the loader's workers run with the extension off, so
  # nothing is recorded live and steps 3b/3c have real back-filling to do.
  quiet python -m invenio_stats_dashboard.demo.loader \
    --records "${DEMO_RECORDS:-300}" --events "${DEMO_EVENTS:-50000}" --seed "${DEMO_SEED:-42}" \
    --workers "${DEMO_WORKERS:-2}" --reset "$INVENIO_INSTANCE_PATH/data" \
    --summary "$INVENIO_INSTANCE_PATH/load-summary.json" --timings "$TIMINGS.load"
  touch "$MARKER"
  echo "    summary: $INVENIO_INSTANCE_PATH/load-summary.json"
  step_done
  sed 's/^/  - /' "$TIMINGS.load" >> "$TIMINGS"; rm -f "$TIMINGS.load"
fi

# The seed's setup steps (setup-and-migration.txt), as they become available:
# 3a custom fields, 3b community events, 3c usage event migration, 4
# aggregation, 5 caching. Each is idempotent. 3c reads the log 3b writes, so
# 3b then 3c run in turn; the help and 3a depend on nothing and run beside
# them. Each step's output is shown in the guide's order, as it comes.
STEPS_DIR="$DEMO_DIR/steps"; rm -rf "$STEPS_DIR"; mkdir -p "$STEPS_DIR"
seed_help() { invenio community-stats --help; }
seed_3a() {
  invenio custom-fields communities init stats:dashboard_enabled stats:dashboard_layout &&
    invenio custom-fields communities exists stats:dashboard_layout
}
seed_3b() {
  invenio community-stats community-events generate &&
    invenio community-stats community-events status
}
seed_3c() {
  invenio community-stats usage-events migrate &&
    invenio community-stats usage-events status
}
run_step() {  # run_step NAME: output to $STEPS_DIR/NAME.out, then its time and exit code
  local start=$EPOCHREALTIME rc=0
  echo "=== $(date '+%F %T') seed step $1 starts" >> "$LOG"
  "seed_$1" > "$STEPS_DIR/$1.out" 2>>"$LOG" || rc=$?
  awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }' > "$STEPS_DIR/$1.time"
  echo "$rc" > "$STEPS_DIR/$1.rc"
  return "$rc"
}
show_step() {  # show_step NAME TITLE: follow the step's output until it is done
  local name=$1 shown=0 size done
  STEP="$2"; echo; echo "==> $2"
  while :; do
    done=0; [ -f "$STEPS_DIR/$name.rc" ] && done=1
    size=$(stat -c %s "$STEPS_DIR/$name.out" 2>/dev/null || echo 0)
    if [ "$size" -gt "$shown" ]; then
      tail -c +"$((shown + 1))" "$STEPS_DIR/$name.out" | head -c "$((size - shown))"; shown=$size
    fi
    [ "$done" = 1 ] && break
    sleep 0.3
  done
  printf '%s\t%s\t%s\n' "$2" "$(cat "$STEPS_DIR/$name.time")" "$(load)" >> "$TIMINGS"
  printf '    (%.0f s)\n' "$(cat "$STEPS_DIR/$name.time")"
  if [ "$(cat "$STEPS_DIR/$name.rc")" != 0 ]; then false; fi  # the ERR trap reports
}
SEED_START=$EPOCHREALTIME
# The help and 3a start beside 3c (they share nothing with it).
{ run_step 3b; ok=$?; run_step help & run_step 3a & [ "$ok" != 0 ] || run_step 3c; wait; } &
show_step help "invenio community-stats --help"
show_step 3a "Seed step 3a: community custom fields"
show_step 3b "Seed step 3b: community membership events (backfill)"
show_step 3c "Seed step 3c: usage-event migration"
wait
awk -v a="$SEED_START" -v b="$EPOCHREALTIME" \
  'BEGIN { printf "seed steps, wall time (help and 3a ran beside 3c)\t%.1f\t", b - a }' >> "$TIMINGS"
load >> "$TIMINGS"

# --- Seed step 4 (aggregations; a block of its own, added with the aggregation
# engine — keep it after 3c when the steps above are reorganised) -------------
step "Seed step 4: catch-up aggregation (every community with records, and global)"
invenio community-stats enable-dashboards --record-threshold 1 2>>"$LOG"
invenio community-stats aggregate --force --until-caught-up --no-show-progress 2>>"$LOG"
invenio community-stats status 2>>"$LOG"
step_done
step "Aggregated documents: physics, records snapshot of the last two days (read)"
invenio community-stats read --community-id physics \
  --query-type community-record-snapshot-added 2>>"$LOG" | sed -n '1,40p'
step_done
# --- end of seed step 4 ------------------------------------------------------

# --- Seed step 5 (initial caching; added with the response cache, issue 12 —
# keep it after step 4: the completeness gate stores only aggregated years) --
step "Seed step 5: initial caching (every community and global, all years of history)"
# --force: scheduled caching is off in the setup period (demo-invenio.cfg), as in step 4.
invenio community-stats cache generate --force --no-show-progress 2>>"$LOG"
invenio community-stats cache info 2>>"$LOG"
step_done
# --- end of seed step 5 ------------------------------------------------------

step "Legacy usage-event indices"
curl -fsS "http://127.0.0.1:9200/_cat/indices/${PREFIX}events-stats-*?v&s=index&h=index,docs.count,store.size"
step_done

echo
echo "Time per step (seconds; the machine's load average when the step ended; 2 cores):"
awk -F'\t' '{ printf "  %7.1f  %5s  %s\n", $2, $3, $1 }' "$TIMINGS"
awk -v a="$RUN_START" -v b="$EPOCHREALTIME" -v l="$(load)" \
  'BEGIN { printf "  %7.1f  %5s  total, from start to serving\n", b - a, l }'
echo "The applications' log: $LOG"

if [ "$SERVE" = 1 ]; then
  step "Serving on http://127.0.0.1:5000 (Ctrl-C to stop; requests are logged to $LOG)"
  cat <<TXT
  Records:      http://127.0.0.1:5000/api/records
  Communities:  http://127.0.0.1:5000/api/communities
  Search:       http://127.0.0.1:9200/_cat/indices/$PREFIX*?v
  (The web UI's assets are built with the dashboard work; the REST API is live.)
TXT
  trap - ERR
  exec python scripts/serve.py 2>>"$LOG"
fi
