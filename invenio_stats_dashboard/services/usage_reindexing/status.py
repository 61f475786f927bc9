# Part of invenio-stats-dashboard (MIT License).
"""Status of every month: what is where, and what its bookmark really says."""

from .months import EVENT_TYPES, discover
from .server_side import MIGRATED_FIELD


class StatusMixin:
    """``count_total_events`` (upstream's name) for ``usage-events status``."""

    def count_total_events(self, event_types=None, month_filter=None):
        """One row per type and month: counts, state, bookmark, write block."""
        bookmarks = self.reindexing_bookmark_api
        rows = []
        for event_type in event_types or EVENT_TYPES:
            for state in discover(self.client, event_type, month_filter):
                mark = bookmarks.get_bookmark(f"{event_type}-{state.month}-reindexing") or {}
                rows.append(self._status_row(state, mark))
        return rows

    def _count(self, index, query=None):
        body = {"query": query} if query else None
        return self.client.count(index=index, body=body)["count"] if index else 0

    def _status_row(self, state, mark):
        source, target = state.source, state.target
        row = {"event_type": state.event_type, "month": state.month,
               "source_index": source or f"{state.stock_name} (deleted)",
               "index": state.enriched_index or f"{state.stock_name}-v2.0.0",
               "bookmark": _position(mark), "write_blocked": state.source_blocked,
               "bookmark_completed": bool(mark.get("completed"))}
        if state.enriched_live:
            count = self._count(source)
            row.update(old_count=count, migrated_count=count, remaining_count=0,
                       state="enriched live")
            return row
        if source is None:  # switched over (current month) or the stock index deleted
            count = self._count(target)
            completed = bool(mark.get("completed"))
            row.update(old_count=count, migrated_count=count, remaining_count=0,
                       state="completed" if completed else
                       "switched, not marked complete (run migrate)" if state.switched else
                       "enriched (no migration bookmark)")
            return row
        old = self._count(source)
        copied = self._count(target, {"term": {MIGRATED_FIELD: True}}) if target else 0
        if mark.get("completed") and self._serves(state):
            label = "completed"
            copied = max(copied, old)
        elif target is None:
            label = "not started"
        else:
            label = "in progress"
        row.update(old_count=old, migrated_count=copied,
                   remaining_count=max(old - copied, 0), state=label)
        return row


def _position(mark):
    """Human-readable bookmark position."""
    if mark.get("last_record_id") and not mark.get("completed"):
        return f"after record {mark['last_record_id']}"
    return mark.get("last_event_timestamp")
