# Part of invenio-stats-dashboard (MIT License).
"""After the migration: re-enrichment, old-index clean-up, legacy backup aliases.

Re-enrichment (upstream cannot do it, G26) rewrites the derived fields of
events *already in* the ``-v2.0.0`` indices, in place, record group by
record group, with the migration's own script. It therefore reaches events
recorded after the migration too, and it never deletes or recreates an
index, so events written meanwhile stay where they are. Each month's
bookmark carries a fingerprint of the subcount configuration: a month done
under the current fingerprint is skipped, a changed configuration restarts
it.
"""

import hashlib
import json
import time

from . import server_side
from .copier import GroupCopier
from ..enrichment import MetadataExtractor
from .months import EVENT_TYPES, SUFFIX, matches_months, month_of


class MaintenanceMixin:
    """Operations on migrated months (mixed into ``EventReindexingService``)."""

    def subcount_digest(self):
        """Fingerprint of the event fields ``COMMUNITY_STATS_SUBCOUNTS`` derives."""
        parts = sorted([field, path if isinstance(path, str)
                        else f"{path.__module__}.{path.__qualname__}"]
                       for field, path in MetadataExtractor(self.subcount_configs).fields)
        return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:16]

    def get_enriched_indices(self, event_type, month_filter=None):
        """Concrete ``-v2.0.0`` indices of a type, oldest first."""
        names = self.client.indices.get(index=f"{self.index_patterns[event_type]}-*{SUFFIX}",
                                        ignore=[404])
        if "error" in names:
            return []
        return sorted(n for n in names if n.endswith(SUFFIX) and month_of(n[:-len(SUFFIX)])
                      and matches_months(month_of(n[:-len(SUFFIX)]), month_filter))

    def enrichment_is_current(self, event_type, month, digest=None):
        """Whether the month's latest enrichment used the current config.

        The re-enrichment bookmark, when there is one, is the latest (a
        completed migration deletes it); otherwise the migration's.
        """
        digest = digest or self.subcount_digest()
        bookmarks = self.reindexing_bookmark_api
        mark = (bookmarks.get_bookmark(f"{event_type}-{month}-reenrich")
                or bookmarks.get_bookmark(f"{event_type}-{month}-reindexing") or {})
        return bool(mark.get("completed") and mark.get("config_hash") == digest)

    def reenrich_events(self, event_types=None, month_filter=None, max_batches=None,
                        fresh_start=False, progress=None):
        """Re-enrich migrated months whose enrichment predates the current config."""
        digest = self.subcount_digest()
        report = {"config_hash": digest, "total_processed": 0, "total_errors": 0,
                  "completed": True, "health_issues": [], "event_types": {}}
        for event_type in event_types or list(EVENT_TYPES):
            for index in self.get_enriched_indices(event_type, month_filter):
                result = self.reenrich_monthly_index(event_type, index,
                                                     month_of(index[:-len(SUFFIX)]), digest,
                                                     max_batches, fresh_start, progress)
                if self._account(report, event_type, result):
                    return report  # stop cleanly; bookmarks hold the position
        return report

    def reenrich_monthly_index(self, event_type, index, month, digest, max_batches=None,
                               fresh_start=False, progress=None):
        """One month, in place, from its bookmark."""
        task_id = f"{event_type}-{month}-reenrich"
        started = time.monotonic()
        bookmarks = self.reindexing_bookmark_api
        result = {"month": month, "event_type": event_type, "source_index": index,
                  "target_index": index, "processed": 0, "batches": 0, "completed": False,
                  "interrupted": False, "errors": []}
        if fresh_start:
            bookmarks.delete_bookmark(task_id)
        elif self.enrichment_is_current(event_type, month, digest):
            result.update(completed=True, skipped=True)
            return result
        mark = bookmarks.get_bookmark(task_id) or {}
        if mark.get("config_hash") != digest:
            mark = {}  # a position under another configuration means nothing now
        result["cancelled_stale_copies"] = server_side.cancel_stale_copies(self.client, index)
        extractor = MetadataExtractor(self.subcount_configs)
        copy = GroupCopier(self, index, index, extractor, result)
        try:
            copy.copy_groups(task_id, mark.get("last_record_id"),
                             max_batches or self.max_batches, progress, config_hash=digest)
            if not result["interrupted"]:
                bookmarks.set_bookmark(task_id, completed=True, config_hash=digest)
                result["completed"] = True
        except Exception as exc:  # the bookmark stays at the last finished group
            result["errors"].append(f"{type(exc).__name__}: {exc}")
        result["total_time"] = round(time.monotonic() - started, 3)
        return result

    def cleanup_old_indices(self, event_types=None, dry_run=False):
        """Delete stock monthly indices whose migration is complete and verified.

        Stricter than upstream's 95 % count ratio: the month's bookmark must
        say ``completed`` and every source event id must be in the target.
        """
        report = {"candidates": 0, "deleted": 0, "event_types": {}}
        for event_type in event_types or list(EVENT_TYPES):
            rows = report["event_types"].setdefault(event_type, [])
            for source in self.get_monthly_indices(event_type):
                target = f"{source}{SUFFIX}"
                if not self.client.indices.exists(index=target):
                    continue
                report["candidates"] += 1
                month = month_of(source)
                row = {"index": source, "target": target,
                       "old": self.client.count(index=source)["count"],
                       "migrated": self.client.count(index=target)["count"]}
                mark = self.reindexing_bookmark_api.get_bookmark(
                    f"{event_type}-{month}-reindexing") or {}
                missing = self.count_missing_ids(source, target)
                if not mark.get("completed"):
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
