# Part of invenio-stats-dashboard (MIT License).
"""``EventReindexingService``: migrate stock monthly event indices to enriched ones.

Per month and event type the events are copied server-side, record group by
record group (``copier``, ``server_side``), into ``…-YYYY-MM-v2.0.0`` under
their original ``_id``; the bookmark (``stats-bookmarks-reindexing``, id
``<type>-YYYY-MM-reindexing``) records the last finished group, so a run
killed at any point resumes after it and a group copied twice overwrites
itself — nothing lost, nothing duplicated.

Readers see every event of every month exactly once at every instant
(``aliases``): the enriched index joins the read alias filtered to what live
writes routed to it, the stock index keeps serving the rest, and one atomic
``_aliases`` call swaps them once the month is frozen, topped up and
validated. Months run concurrently (``parallel_months``) under one lock per
cluster (``utils.jobs``), with the run's options passed per call
(``RunSettings``).
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import arrow
from flask import current_app
from invenio_search.proxies import current_search_client

from ...search_indices.names import events_alias
from ...utils.jobs import configured_job
from .. import events_log as log
from ..enrichment import MetadataExtractor, log_mark
from ..health import HealthCheck
from . import aliases, server_side
from .bookmarks import EventReindexingBookmarkAPI
from .copier import GroupCopier
from .maintenance import MaintenanceMixin
from .months import EVENT_TYPES, SUFFIX, discover
from .settings import RunSettings
from .status import StatusMixin

CORE_FIELDS = ("timestamp", "recid", "parent_recid", "unique_id", "visitor_id",
               "country", "unique_session_id", "referrer", "via_api", "is_machine",
               "is_robot", "bucket_id", "file_id", "file_key", "size")
LOCK = "usage_events"  # STATS_DASHBOARD_LOCK_CONFIG entry shared with re-enrichment
HEALTH_EVERY = 2.0  # seconds between health probes of one run (months share them)


class EventReindexingService(StatusMixin, MaintenanceMixin):
    """Migration of legacy view/download indices into enriched ``-v2.0.0`` indices."""

    def __init__(self, app=None):
        """Read the default run settings from the merged config."""
        config = (app or current_app).config
        self.app = app
        self.defaults = RunSettings.from_config(config)
        self.subcount_configs = config["COMMUNITY_STATS_SUBCOUNTS"]

    # Upstream's attribute names, read-only: a run's options are passed per call.
    batch_size = property(lambda self: self.defaults.batch_size)
    max_batches = property(lambda self: self.defaults.max_batches)
    max_memory_percent = property(lambda self: self.defaults.max_memory_percent)
    max_heap_percent = property(lambda self: self.defaults.max_heap_percent)

    def settings(self, **overrides):
        """This run's settings: the defaults with the caller's options."""
        return self.defaults.updated(**overrides)

    @property
    def client(self):
        """The search client."""
        return current_search_client

    @property
    def index_patterns(self):
        """Prefixed read aliases per event type."""
        return {t: events_alias(t) for t in EVENT_TYPES}

    @property
    def community_events_index_exists(self):
        """Whether the membership log exists and holds events (step 3b has run)."""
        alias = log.alias_name()
        return bool(self.client.indices.exists(index=alias)
                    and self.client.count(index=alias)["count"])

    @property
    def reindexing_bookmark_api(self):
        """Bookmark store."""
        return EventReindexingBookmarkAPI(self.client)

    # -- discovery -----------------------------------------------------------
    @staticmethod
    def get_current_month():
        """``YYYY-MM`` of now (UTC)."""
        return arrow.utcnow().format("YYYY-MM")

    def get_monthly_indices(self, event_type, month_filter=None):
        """Stock-named indices of a type that still need migrating, oldest first."""
        return [s.source for s in discover(self.client, event_type, month_filter)
                if s.needs_migration]

    # -- health --------------------------------------------------------------
    def check_health_conditions(self, settings=None):
        """``{is_healthy, reason}`` before each group: memory, heap, cluster (``health``)."""
        settings = settings or self.defaults
        return HealthCheck(settings.max_memory_percent, settings.max_heap_percent,
                           self.client).check()

    # -- migration -----------------------------------------------------------
    def reindex_events(self, event_types=None, max_batches=None, delete_old_indices=False,
                       fresh_start=False, month_filter=None, progress=None, **options):
        """Migrate every selected month; returns the run report.

        ``options``: ``batch_size``, ``max_memory_percent``, ``parallel_groups``,
        ``parallel_months`` for this run only. Raises
        ``TaskLockAcquisitionError`` while another migration or
        re-enrichment runs.
        """
        settings = self.settings(max_batches=max_batches, **options)
        report = new_report()
        types = [t for t in event_types or list(EVENT_TYPES) if t in EVENT_TYPES]
        current = self.get_current_month()
        with configured_job(LOCK) as job:
            states = [s for t in types for s in discover(self.client, t, month_filter)
                      if s.needs_migration or s.switched]
            if any(s.needs_migration for s in states) and not self.community_events_index_exists:
                # Migrating now would stamp "no community" on every event.
                report.update(completed=False, error=(
                    "The community events log is empty: run 'invenio community-stats "
                    "community-events generate' first (seed step 3b)."))
                return report
            # Oldest first, the live current months last.
            states.sort(key=lambda s: (s.month == current, s.month, s.event_type))
            self._run_months(report, states, job, settings, lambda state, stop: self.migrate_month(
                state, settings, delete_old_indices, fresh_start, progress, stop))
        return report

    def _run_months(self, report, states, job, settings, work):
        """Run ``work(state)`` for months concurrently; a stop stops the rest cleanly."""
        stop = threading.Event()
        app = current_app._get_current_object()

        health = {"at": -HEALTH_EVERY, "reason": None}
        guard = threading.Lock()

        def reason():  # between groups, in every month's thread
            if stop.is_set():
                return "stopped"
            why = job.stop_reason()
            with guard:  # one health probe per few seconds for the whole run
                if not why and time.monotonic() - health["at"] >= HEALTH_EVERY:
                    check = self.check_health_conditions(settings)
                    health.update(at=time.monotonic(),
                                  reason=None if check["is_healthy"] else check["reason"])
                why = why or health["reason"]
            if why:
                stop.set()
            return why

        def one(state):
            with app.app_context():
                if stop.is_set():
                    return {**month_result(state), "interrupted": True}
                return work(state, reason)

        with ThreadPoolExecutor(max_workers=settings.parallel_months) as pool:
            for state, result in zip(states, pool.map(one, states)):
                account(report, state.event_type, result)

    def migrate_monthly_index(self, event_type, source_index, month, max_batches=None,
                              delete_old_indices=False, fresh_start=False, progress=None,
                              **options):
        """One month (upstream's entry point); takes the run lock itself."""
        settings = self.settings(max_batches=max_batches, **options)
        with configured_job(LOCK) as job:
            state = next(iter(discover(self.client, event_type, month)), None)
            if state is None or source_index not in (state.source, state.stock_name):
                raise ValueError(f"no month {month} of {event_type} events at {source_index}")
            return self.migrate_month(state, settings, delete_old_indices, fresh_start,
                                      progress, job.stop_reason)

    def migrate_month(self, state, settings, delete_old_indices=False, fresh_start=False,
                      progress=None, stop=None):
        """Copy one month group by group from its bookmark, then freeze, check and switch."""
        started = time.monotonic()
        result = month_result(state)
        task_id = f"{state.event_type}-{state.month}-reindexing"
        bookmarks = self.reindexing_bookmark_api
        if fresh_start:  # re-copy everything; readers keep seeing the month throughout
            bookmarks.delete_bookmark(task_id)
        mark = bookmarks.get_bookmark(task_id) or {}
        if state.switched:  # a run was killed after the switch, before its bookmark
            if not mark.get("completed"):
                bookmarks.set_bookmark(task_id, completed=True, config_hash=mark.get(
                    "config_hash") or self.subcount_digest(),
                    membership_mark=mark.get("membership_mark"))
                result["finished_switch"] = True
            result.update(completed=True, skipped=not result.get("finished_switch"))
            return result
        if mark.get("completed") and self._serves(state):
            result.update(completed=True, skipped=True)
            return result
        read_alias = self.index_patterns[state.event_type]
        aliases.prepare_target(self.client, state, read_alias, bool(mark.get("completed")))
        # We hold the run lock: a copy into this target now is a killed run's orphan.
        result["cancelled_stale_copies"] = server_side.cancel_stale_copies(
            self.client, state.target)
        self.client.indices.refresh(index=state.source)  # groups list every event
        membership = mark.get("membership_mark") or log_mark(self.client)
        extractor = MetadataExtractor(self.subcount_configs)
        copy = GroupCopier(self, state.source, state.target, extractor, result, settings, stop)
        try:
            copy.copy_groups(task_id, mark.get("last_record_id"), settings.max_batches,
                             progress, extra={"membership_mark": membership})
            if not result["interrupted"]:
                copy({"bool": {"must_not": {"exists": {"field": "recid"}}}}, [])
                self._finish(state, copy, task_id, result, settings, membership,
                             delete_old_indices)
        except Exception as exc:  # the stock index keeps serving; retried next run
            result["errors"].append(f"{type(exc).__name__}: {exc}")
        extractor.clear_cache()
        result["total_time"] = round(time.monotonic() - started, 3)
        return result

    def _serves(self, state):
        """Whether the month is read from its enriched index (unfiltered)."""
        mine = state.target_aliases.get(self.index_patterns[state.event_type])
        return mine is not None and not (mine or {}).get("filter")

    def _finish(self, state, copy, task_id, result, settings, membership, delete_old):
        """Freeze, copy what is missing, validate, switch, bookmark; unfreeze on failure."""
        source, target = state.source, state.target
        current = state.month == self.get_current_month()
        switched = False
        try:
            aliases.freeze(self.client, source)
            self.client.indices.refresh(index=target)  # the copies so far are found by id
            chunk, topped_up = [], 0
            for pair in server_side.iter_missing(self.client, source, target):
                chunk.append(pair)
                topped_up += 1
                if len(chunk) >= settings.batch_size:
                    copy({"ids": {"values": [i for i, _ in chunk]}}, {r for _, r in chunk if r})
                    chunk = []
            if chunk:
                copy({"ids": {"values": [i for i, _ in chunk]}}, {r for _, r in chunk if r})
            unknown = sorted(set(result.get("records_without_history") or ()))
            if unknown:
                result["errors"].append(
                    f"{len(unknown)} record(s) have no history in the community events log "
                    f"(run 'community-events generate'), e.g. {', '.join(unknown[:3])}")
                self.reindexing_bookmark_api.delete_bookmark(task_id)  # redo after the backfill
                return
            self.client.indices.refresh(index=target)
            # The source is frozen and the target only grows: when the scan
            # above found nothing missing, a second scan would find nothing.
            validation = self.validate_enriched_data(source, target, settings.sample_size,
                                                     check_ids=bool(topped_up))
            result["validation"] = validation
            if not validation["success"]:
                result["errors"].extend(validation["errors"])
                self.reindexing_bookmark_api.delete_bookmark(task_id)  # retry the month
                return
            aliases.switch(self.client, state, self.index_patterns[state.event_type], current)
            switched = True
            self.reindexing_bookmark_api.set_bookmark(
                task_id, completed=True, config_hash=self.subcount_digest(),
                membership_mark=membership)
            self.reindexing_bookmark_api.delete_bookmark(
                f"{state.event_type}-{state.month}-reenrich")
            result["completed"] = True
        finally:
            if not current or not switched:  # the stock index is left as it was
                aliases.unfreeze(self.client, source)
        if delete_old and state.source is not None:  # the current month's is gone already
            self.delete_old_index(state.source)

    def validate_enriched_data(self, source_index, target_index, sample_size=None,
                               check_ids=True):
        """Every source id must be in the target; sampled core fields must be equal.

        ``check_ids=False`` when the caller has just scanned every source id
        against the target of a frozen source and found none missing.
        """
        errors = []
        source_count = self.client.count(index=source_index)["count"]
        target_count = self.client.count(index=target_index)["count"]
        missing = self.count_missing_ids(source_index, target_index) if check_ids else 0
        if missing:  # the target may hold more: events routed to it live
            errors.append(f"{missing} of {source_count} source events missing from the target")
        size = sample_size or self.defaults.sample_size
        sample = self.client.search(index=source_index, body={
            "size": size, "query": {"function_score": {"random_score": {}}}})["hits"]["hits"]
        if sample:
            found = self.client.mget(index=target_index, body={"ids": [h["_id"] for h in sample]})
            by_id = {d["_id"]: d for d in found["docs"] if d.get("found")}
            for hit in sample:
                copy = by_id.get(hit["_id"])
                if copy is None:
                    errors.append(f"event {hit['_id']} missing from {target_index}")
                    continue
                for field in CORE_FIELDS:
                    if field in hit["_source"] and hit["_source"][field] != copy["_source"].get(field):
                        errors.append(f"event {hit['_id']}: field {field} differs")
        return {"success": not errors, "errors": errors[:20],
                "document_counts": {"source": source_count, "target": target_count},
                "spot_checked": len(sample)}

    def count_missing_ids(self, source_index, target_index):
        """Source events whose id is not in the target (paged; bounded memory)."""
        return sum(1 for _ in server_side.iter_missing(self.client, source_index, target_index,
                                                       with_recid=False))

    def delete_old_index(self, index_name):
        """Delete a migrated stock index — never through an alias of that name."""
        if self.client.indices.exists_alias(name=index_name):
            return False  # the current month's name now points at the enriched index
        self.client.indices.delete(index=index_name, ignore=[404])
        return True


def new_report():
    """An empty run report (spec 5.10 ``ReindexingResults``)."""
    return {"total_processed": 0, "total_errors": 0, "event_types": {},
            "health_issues": [], "completed": True, "error": None}


def month_result(state):
    """An empty month result (spec 5.10 ``MigrationResult``)."""
    return {"month": state.month, "event_type": state.event_type,
            "source_index": state.source or state.stock_name,
            "target_index": state.target or f"{state.stock_name}{SUFFIX}",
            "processed": 0, "batches": 0, "completed": False, "interrupted": False,
            "errors": [], "validation": None}


def account(report, event_type, result):
    """Add a month's result to the run report."""
    type_report = report["event_types"].setdefault(
        event_type, {"processed": 0, "errors": 0, "months": {}})
    type_report["months"][result["month"]] = result
    type_report["processed"] += result["processed"]
    report["total_processed"] += result["processed"]
    if result["errors"]:
        type_report["errors"] += len(result["errors"])
        report["total_errors"] += len(result["errors"])
    issue = result.get("health_issue")
    if issue and issue != "stopped" and issue not in report["health_issues"]:
        report["health_issues"].append(issue)
    if not result["completed"]:
        report["completed"] = False
