# Part of invenio-stats-dashboard (MIT License).
"""After the migration: re-enrichment, old-index clean-up, legacy backup aliases.

Re-enrichment (upstream cannot do it, G26) rewrites the derived fields of
events *already in* enriched indices, in place, with the migration's own
script — migrated months, and months our extension enriched live. It reaches
events recorded after the migration too, and never deletes or recreates an
index. A month is redone when its inputs changed since it was enriched:

* the subcount configuration (``config_hash`` of its bookmark, or the
  ``_meta`` our template wrote on a live month) — every event is rewritten,
  resumably, group by group;
* the membership log, retroactively (``enrichment.changed_records``: a
  backfill or a repair written after the month's ``membership_mark``) — only
  the affected records' events are rewritten.
"""

import time

import arrow

from ...utils.jobs import configured_job
from ..enrichment import MetadataExtractor, changed_records, log_mark, subcount_digest
from . import server_side
from .copier import GroupCopier
from .months import EVENT_TYPES, SUFFIX, discover, month_of

#: More changed records than this: rewrite the whole month instead.
PARTIAL_LIMIT = 10_000
#: Safety margin when a month's stamps have no recorded mark (its index's
#: creation time is on the cluster's clock, log writes on the writers').
UNMARKED_MARGIN_MS = 3_600_000


class MaintenanceMixin:
    """Operations on enriched months (mixed into ``EventReindexingService``)."""

    def subcount_digest(self):
        """Fingerprint of the event fields ``COMMUNITY_STATS_SUBCOUNTS`` derives."""
        return subcount_digest(self.subcount_configs)

    # -- which months, and how current -----------------------------------------
    def enriched_months(self, event_type, month_filter=None):
        """Months whose events carry enrichment: migrated ones and live ones."""
        return [s for s in discover(self.client, event_type, month_filter)
                if s.enriched_live or s.switched or (s.target and self._serves(s))]

    def get_enriched_indices(self, event_type, month_filter=None):
        """Their indices, oldest first."""
        return [s.enriched_index for s in self.enriched_months(event_type, month_filter)]

    def enrichment_marks(self, state):
        """``(config hash, membership mark)`` of a month's latest enrichment.

        The latest completed bookmark (re-enrichment, else migration) says;
        without one, the ``_meta`` of the index and its creation time do.
        """
        bookmarks = self.reindexing_bookmark_api
        for kind in ("reenrich", "reindexing"):
            mark = bookmarks.get_bookmark(f"{state.event_type}-{state.month}-{kind}")
            if mark is None:
                continue
            since = mark.get("membership_mark") or self._unmarked_since(state)
            if not mark.get("completed"):  # an interrupted run: the events are mixed
                return None, since
            return mark.get("config_hash"), since
        meta = (state.target_meta if state.target else state.source_meta) or {}
        return meta.get("subcount_digest"), self._unmarked_since(state)

    @staticmethod
    def _unmarked_since(state):
        created = state.target_created if state.target else state.source_created
        if created is None:
            return None
        return arrow.get((created - UNMARKED_MARGIN_MS) / 1000).isoformat()

    def enrichment_is_current(self, event_type, month, digest=None):
        """Whether the month's latest enrichment used the current subcount config."""
        state = next(iter(discover(self.client, event_type, month)), None)
        if state is None or not state.enriched_index:
            return False
        return self.enrichment_marks(state)[0] == (digest or self.subcount_digest())

    def membership_changes(self, state):
        """Records whose membership changed retroactively since the month was stamped."""
        since = self.enrichment_marks(state)[1]
        return list(changed_records(since, state.end, self.client))

    # -- re-enrichment ---------------------------------------------------------
    def reenrich_events(self, event_types=None, month_filter=None, max_batches=None,
                        fresh_start=False, progress=None, **options):
        """Re-enrich every month whose inputs changed; returns the run report."""
        from .service import new_report

        settings = self.settings(max_batches=max_batches, **options)
        digest = self.subcount_digest()
        report = {**new_report(), "config_hash": digest}
        with configured_job("usage_events") as job:
            states = [s for t in event_types or list(EVENT_TYPES)
                      for s in self.enriched_months(t, month_filter)]
            self._run_months(report, states, job, settings, lambda state, stop: (
                self.reenrich_month(state, digest, settings, fresh_start, progress, stop)))
        return report

    def reenrich_monthly_index(self, event_type, index, month, digest, max_batches=None,
                               fresh_start=False, progress=None):
        """One month (kept for callers of the earlier name); takes the run lock."""
        settings = self.settings(max_batches=max_batches)
        with configured_job("usage_events") as job:
            state = next(iter(discover(self.client, event_type, month)))
            return self.reenrich_month(state, digest, settings, fresh_start, progress,
                                       job.stop_reason)

    def reenrich_month(self, state, digest, settings, fresh_start=False, progress=None,
                       stop=None):
        """One month, in place: whole (config changed) or the changed records only."""
        from .service import month_result

        index = state.enriched_index
        self.client.indices.refresh(index=index)  # live writes of the last seconds too
        task_id = f"{state.event_type}-{state.month}-reenrich"
        started = time.monotonic()
        bookmarks = self.reindexing_bookmark_api
        result = {**month_result(state), "source_index": index, "target_index": index}
        config_hash, _since = self.enrichment_marks(state)
        mark = bookmarks.get_bookmark(task_id) or {}
        whole = fresh_start or config_hash != digest
        changed = [] if whole else self.membership_changes(state)
        if not whole and not changed:
            result.update(completed=True, skipped=True)
            return result
        if len(changed) > PARTIAL_LIMIT:
            whole = True
        if not whole or mark.get("completed") or mark.get("config_hash") != digest or fresh_start:
            mark = {}  # a position under another configuration (or scope) means nothing now
        membership = mark.get("membership_mark") or log_mark(self.client)
        result["scope"] = "all records" if whole else f"{len(changed)} changed records"
        result["cancelled_stale_copies"] = server_side.cancel_stale_copies(self.client, index)
        extractor = MetadataExtractor(self.subcount_configs)
        copy = GroupCopier(self, index, index, extractor, result, settings, stop)
        groups = None if whole else server_side.record_groups(
            self.client, index, batch_size=settings.batch_size,
            query={"terms": {"recid": sorted(changed)}})
        try:
            copy.copy_groups(task_id if whole else None, mark.get("last_record_id"),
                             settings.max_batches, progress, config_hash=digest,
                             groups=groups, extra={"membership_mark": membership})
            if not result["interrupted"]:
                bookmarks.set_bookmark(task_id, completed=True, config_hash=digest,
                                       membership_mark=membership)
                result["completed"] = True
        except Exception as exc:  # the bookmark stays at the last finished group
            result["errors"].append(f"{type(exc).__name__}: {exc}")
        result["total_time"] = round(time.monotonic() - started, 3)
        return result

    # -- clean-up ----------------------------------------------------------------
    def cleanup_old_indices(self, event_types=None, dry_run=False):
        """Delete stock monthly indices whose migration is complete and verified.

        Stricter than upstream's 95 % count ratio: the month's bookmark must
        say ``completed``, the enriched index must serve it, and every source
        event id must be in the enriched index.
        """
        report = {"candidates": 0, "deleted": 0, "event_types": {}}
        for event_type in event_types or list(EVENT_TYPES):
            rows = report["event_types"].setdefault(event_type, [])
            for state in discover(self.client, event_type):
                if not (state.source and state.target) or state.enriched_live:
                    continue
                report["candidates"] += 1
                source, target = state.source, state.target
                row = {"index": source, "target": target,
                       "old": self.client.count(index=source)["count"],
                       "migrated": self.client.count(index=target)["count"]}
                mark = self.reindexing_bookmark_api.get_bookmark(
                    f"{event_type}-{state.month}-reindexing") or {}
                missing = self.count_missing_ids(source, target)
                if not (mark.get("completed") and self._serves(state)):
                    row.update(action="kept", reason="migration not completed")
                elif missing:
                    row.update(action="kept", reason=f"{missing} events missing from the target")
                elif dry_run:
                    row.update(action="would delete")
                    report["deleted"] += 1
                else:
                    self.delete_old_index(source)
                    row.update(action="deleted")
                    report["deleted"] += 1
                rows.append(row)
        return report

    def remove_backup_index_aliases(self, dry_run=False):
        """Strip aliases from legacy ``…-backup`` view/download indices.

        Returns ``{index: [aliases]}`` (what was, or would be, removed).
        """
        removed = {}
        for alias in self.index_patterns.values():
            found = self.client.indices.get_alias(index=f"{alias}-*-backup,backup-{alias}-*",
                                                  ignore=[404])
            for index, info in sorted(found.items()):
                names = sorted((info or {}).get("aliases", {})) if isinstance(info, dict) else []
                if not names:
                    continue
                removed[index] = names
                if not dry_run:
                    self.client.indices.update_aliases(body={"actions": [
                        {"remove": {"index": index, "alias": name}} for name in names]})
        return removed


__all__ = ("MaintenanceMixin", "SUFFIX", "month_of")
