# Part of invenio-stats-dashboard (MIT License).
"""``EventReindexingService``: migrate stock monthly event indices to enriched ones.

Per month and event type the events are copied server-side, record group by
record group (``copier``, ``server_side``), into ``…-YYYY-MM-v2.0.0`` under
their original ``_id``; the bookmark (``stats-bookmarks-reindexing``, id
``<type>-YYYY-MM-reindexing``) records the last finished group, so a run
killed at any point resumes after it and a group copied twice overwrites
itself — nothing lost, nothing duplicated. A finished month is validated
(every source id present, sampled fields equal) and its read alias moved to
the new index in one atomic ``_aliases`` call.

The current month keeps receiving events. Once its target exists, our
event indexer writes that month's new events to the target directly
(``EnrichedEventsIndexer``), so the stock index stops changing: after waiting
the indexer's routing TTL, writes to it are blocked, the missing ids are
copied, every source id is checked in the target, and one atomic
``_aliases`` call removes the stock index and gives its name to the target
as a write alias.
"""

import time

import arrow
from flask import current_app
from invenio_search.proxies import current_search_client
from ...search_indices.names import events_alias

from .. import events_log as log
from ..health import HealthCheck
from . import server_side
from .bookmarks import EventReindexingBookmarkAPI
from .copier import GroupCopier
from ..enrichment import MetadataExtractor
from .maintenance import MaintenanceMixin
from .months import EVENT_TYPES, SUFFIX, matches_months, month_of

CORE_FIELDS = ("timestamp", "recid", "parent_recid", "unique_id", "visitor_id",
               "country", "unique_session_id", "referrer", "via_api", "is_machine",
               "is_robot", "bucket_id", "file_id", "file_key", "size")


class EventReindexingService(MaintenanceMixin):
    """Migration of legacy view/download indices into enriched ``-v2.0.0`` indices."""

    def __init__(self, app=None):
        """Read the tuning settings from the merged config."""
        config = (app or current_app).config
        self.app = app
        self.batch_size = min(int(config["STATS_DASHBOARD_REINDEXING_BATCH_SIZE"]), 10_000)
        self.max_batches = int(config["STATS_DASHBOARD_REINDEXING_MAX_BATCHES"])
        self.max_memory_percent = float(config["STATS_DASHBOARD_REINDEXING_MAX_MEMORY_PERCENT"])
        self.max_heap_percent = float(config["STATS_DASHBOARD_REINDEXING_MAX_HEAP_PERCENT"])
        self.max_spot_check_sample_size = int(
            config.get("STATS_DASHBOARD_REINDEXING_MAX_SPOT_CHECK_SAMPLE_SIZE", 100))
        self.subcount_configs = config["COMMUNITY_STATS_SUBCOUNTS"]
        self.parallel = max(1, int(config.get("STATS_DASHBOARD_REINDEXING_PARALLEL_GROUPS", 2)))

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
        """Stock monthly indices of a type, oldest first, optionally filtered."""
        alias = self.index_patterns[event_type]
        names = self.client.indices.get(index=f"{alias}-*", ignore=[404])
        if "error" in names:
            return []
        months = sorted(n for n in names if not n.endswith(SUFFIX)
                        and not n.startswith("backup-") and month_of(n))
        return [n for n in months if matches_months(month_of(n), month_filter)]

    # -- health --------------------------------------------------------------
    def check_health_conditions(self):
        """``{is_healthy, reason}`` before each group: memory, heap, cluster (``health``)."""
        return HealthCheck(self.max_memory_percent, self.max_heap_percent, self.client).check()

    # -- migration -----------------------------------------------------------
    def reindex_events(self, event_types=None, max_batches=None, delete_old_indices=False,
                       fresh_start=False, month_filter=None, progress=None):
        """Migrate every selected month; returns the run report."""
        report = {"total_processed": 0, "total_errors": 0, "event_types": {},
                  "health_issues": [], "completed": True, "error": None, "pending": []}
        types = [t for t in event_types or list(EVENT_TYPES) if t in EVENT_TYPES]
        if (any(self.get_monthly_indices(t, month_filter) for t in types)
                and not self.community_events_index_exists):
            # Migrating now would stamp "no community" on every event.
            report.update(completed=False, error=(
                "The community events log is empty: run 'invenio community-stats "
                "community-events generate' first (seed step 3b)."))
            return report
        # Past months first, then the current months together: a current-month
        # target receives live events as soon as it exists but joins the read
        # alias only at the switch, so it is created as late as possible, and
        # for all types at once so that their routing-TTL waits overlap.
        current = self.get_current_month()
        jobs = [(t, s) for t in types for s in self.get_monthly_indices(t, month_filter)]
        past = [(t, s) for t, s in jobs if month_of(s) != current]
        present = [(t, s) for t, s in jobs if month_of(s) == current]
        for phase in (past, present):
            if phase is present:
                for event_type, source in present:
                    mark = self.reindexing_bookmark_api.get_bookmark(
                        f"{event_type}-{current}-reindexing") or {}
                    if not mark.get("completed"):
                        self._ensure_target(source, f"{source}{SUFFIX}")
            for event_type, source in phase:
                result = self.migrate_monthly_index(event_type, source, month_of(source),
                                                    max_batches, delete_old_indices,
                                                    fresh_start, progress)
                if self._account(report, event_type, result):
                    return report  # stop cleanly; bookmarks hold the position
        return report

    @staticmethod
    def _account(report, event_type, result):
        """Add a month's result to the run report; True when the run must stop."""
        type_report = report["event_types"].setdefault(
            event_type, {"processed": 0, "errors": 0, "months": {}})
        type_report["months"][result["month"]] = result
        type_report["processed"] += result["processed"]
        report["total_processed"] += result["processed"]
        if result["errors"]:
            type_report["errors"] += len(result["errors"])
            report["total_errors"] += len(result["errors"])
        if result.get("health_issue"):
            report["health_issues"].append(result["health_issue"])
        if not result["completed"]:
            report["completed"] = False
            return bool(result.get("health_issue"))
        return False

    def migrate_monthly_index(self, event_type, source_index, month, max_batches=None,
                              delete_old_indices=False, fresh_start=False, progress=None):
        """Copy one month group by group from its bookmark, then validate and switch."""
        started = time.monotonic()
        task_id = f"{event_type}-{month}-reindexing"
        target = f"{source_index}{SUFFIX}"
        bookmarks = self.reindexing_bookmark_api
        result = {"month": month, "event_type": event_type, "source_index": source_index,
                  "target_index": target, "processed": 0, "batches": 0, "completed": False,
                  "interrupted": False, "errors": [], "validation": None}
        if fresh_start:  # re-copy everything; the target keeps live-routed events
            bookmarks.delete_bookmark(task_id)
        mark = bookmarks.get_bookmark(task_id) or {}
        if mark.get("completed"):
            result.update(completed=True, skipped=True)
            return result
        self._ensure_target(source_index, target)
        result["cancelled_stale_copies"] = server_side.cancel_stale_copies(self.client, target)
        extractor = MetadataExtractor(self.subcount_configs)
        copy = GroupCopier(self, source_index, target, extractor, result)
        limit = max_batches or self.max_batches
        try:
            copy.copy_groups(task_id, mark.get("last_record_id"), limit, progress)
            if not result["interrupted"]:
                copy({"bool": {"must_not": {"exists": {"field": "recid"}}}}, [])
                current = month == self.get_current_month()
                if current:
                    self._freeze_and_finish(source_index, target, copy)
                self._finish(event_type, month, source_index, target, current, task_id, result,
                             delete_old_indices)
        except Exception as exc:  # the source is untouched; the month is retried next run
            result["errors"].append(f"{type(exc).__name__}: {exc}")
        extractor.clear_cache()
        result["total_time"] = round(time.monotonic() - started, 3)
        return result

    def _finish(self, event_type, month, source, target, current, task_id, result, delete_old):
        """Validate, then switch the aliases and mark the month complete."""
        self.client.indices.refresh(index=target)
        validation = self.validate_enriched_data(source, target)
        result["validation"] = validation
        if not validation["success"]:
            result["errors"].extend(validation["errors"])
            self.reindexing_bookmark_api.delete_bookmark(task_id)  # retry the month next run
            return
        if current:
            self.switch_over_current_month_index(event_type, source, target)
        else:
            self.update_alias(event_type, month, source, target)
        self.reindexing_bookmark_api.set_bookmark(task_id, completed=True,
                                                  config_hash=self.subcount_digest())
        self.reindexing_bookmark_api.delete_bookmark(f"{event_type}-{month}-reenrich")
        result["completed"] = True
        if delete_old:
            self.delete_old_index(source)

    def _freeze_and_finish(self, source, target, copy):
        """Current month: let routing take effect, block the source, copy what is missing.

        Events written while the groups were copied may belong to records
        already done, so the rest is found by id (source ids not in the target).
        """
        ttl = float(current_app.config.get("STATS_DASHBOARD_EVENT_ROUTING_TTL", 60))
        settings = self.client.indices.get_settings(index=target)[target]["settings"]
        created = int(settings["index"]["creation_date"]) / 1000
        time.sleep(max(0.0, created + ttl + 1 - time.time()))
        self.client.indices.put_settings(index=source, body={"index.blocks.write": True})
        self.client.indices.refresh(index=source)  # the last writes become searchable
        self.client.indices.refresh(index=target)
        chunk = []
        for pair in server_side.iter_missing(self.client, source, target):
            chunk.append(pair)
            if len(chunk) >= self.batch_size:
                copy({"ids": {"values": [i for i, _ in chunk]}}, {r for _, r in chunk if r})
                chunk = []
        if chunk:
            copy({"ids": {"values": [i for i, _ in chunk]}}, {r for _, r in chunk if r})

    def switch_over_current_month_index(self, event_type, old_index, new_index):
        """Atomically replace the stock index by a write alias to the enriched one."""
        self.client.indices.update_aliases(body={"actions": [
            {"remove_index": {"index": old_index}},
            {"add": {"index": new_index, "alias": old_index, "is_write_index": True}},
            {"add": {"index": new_index, "alias": self.index_patterns[event_type]}},
        ]})
        return True

    def _ensure_target(self, source, target):
        """Create the target; it gets the read alias only when complete (no double counts)."""
        if not self.client.indices.exists(index=target):
            self.client.indices.create(index=target)
        aliases = self.client.indices.get_alias(index=target).get(target, {}).get("aliases", {})
        if aliases:
            self.client.indices.update_aliases(body={"actions": [
                {"remove": {"index": target, "alias": name}} for name in aliases]})

    def validate_enriched_data(self, source_index, target_index, sample_size=None):
        """Counts must match; sampled core fields must be equal."""
        errors = []
        source_count = self.client.count(index=source_index)["count"]
        target_count = self.client.count(index=target_index)["count"]
        missing = self.count_missing_ids(source_index, target_index)
        if missing:  # the target may hold more: events routed to it live
            errors.append(f"{missing} of {source_count} source events missing from the target")
        size = sample_size or self.max_spot_check_sample_size
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

    def update_alias(self, event_type, month, old_index, new_index):
        """Move the read alias from the old to the new index in one atomic call."""
        alias = self.index_patterns[event_type]
        actions = [{"add": {"index": new_index, "alias": alias}}]
        if self.client.indices.exists_alias(name=alias, index=old_index):
            actions.append({"remove": {"index": old_index, "alias": alias}})
        self.client.indices.update_aliases(body={"actions": actions})
        return True

    def delete_old_index(self, index_name):
        """Delete a migrated stock index."""
        self.client.indices.delete(index=index_name, ignore=[404])
        return True

    def count_total_events(self):
        """Per type and month: source count, migrated count, bookmark state."""
        bookmarks = self.reindexing_bookmark_api
        rows = []
        for event_type in EVENT_TYPES:
            for source in self.get_monthly_indices(event_type):
                month = month_of(source)
                target = f"{source}{SUFFIX}"
                migrated = (self.client.count(index=target)["count"]
                            if self.client.indices.exists(index=target) else 0)
                mark = bookmarks.get_bookmark(f"{event_type}-{month}-reindexing") or {}
                old = self.client.count(index=source)["count"]
                state = ("completed" if mark.get("completed") else
                         "in progress" if mark else "not started")
                rows.append({"event_type": event_type, "month": month, "source_index": source,
                             "index": target, "old_count": old, "migrated_count": migrated,
                             "remaining_count": max(old - migrated, 0), "state": state,
                             "bookmark": _position(mark)})
            # Completed months whose stock index is gone (deleted or switched over).
            seen = {r["index"] for r in rows}
            alias = self.index_patterns[event_type]
            for target in sorted(self.client.indices.get(index=f"{alias}-*{SUFFIX}",
                                                          ignore=[404])):
                if target in seen or target == "error" or not target.endswith(SUFFIX):
                    continue
                count = self.client.count(index=target)["count"]
                rows.append({"event_type": event_type, "month": month_of(target[:-len(SUFFIX)]),
                             "source_index": f"{target[:-len(SUFFIX)]} (deleted)",
                             "index": target, "old_count": count, "migrated_count": count,
                             "remaining_count": 0, "state": "completed", "bookmark": None})
        return rows


def _position(mark):
    """Human-readable bookmark position."""
    if mark.get("last_record_id"):
        return f"after record {mark['last_record_id']}"
    return mark.get("last_event_timestamp")
