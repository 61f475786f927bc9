# Part of invenio-stats-dashboard (MIT License).
"""Enrichment of view/download events: record metadata and community membership.

Both parts work per *batch*: one records-index query and one read of the
membership log for all the batch's records, never one query per event.
The metadata fields come from ``COMMUNITY_STATS_SUBCOUNTS[*]["usage_events"]``
(``event_field`` ← ``extraction_path_for_event``), so adding a subcount is a
configuration change; values are pruned to what the v2 event mapping knows
(strict mappings reject unknown keys).
"""

import bisect
from collections import defaultdict

from datetime import datetime, timezone

import arrow
from invenio_search.proxies import current_search_client
from ..search_indices.names import records_index

from . import events_log as log

RECORD_SOURCE = ["id", "metadata", "access", "files", "custom_fields", "parent.id"]


def extract_path(document, path):
    """Value at a dotted ``path``; lists along the way are mapped and flattened."""
    values = [document]
    for part in path.split("."):
        nxt = []
        for value in values:
            if isinstance(value, list):
                value = [v.get(part) for v in value if isinstance(v, dict)]
                nxt.extend(v for v in value if v is not None)
            elif isinstance(value, dict) and value.get(part) is not None:
                nxt.append(value[part])
        values = nxt
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    flat = []
    for v in values:
        flat.extend(v if isinstance(v, list) else [v])
    return flat


def prune(value, mapping):
    """Keep only what ``mapping`` (an OpenSearch property) can hold."""
    if value is None:
        return None
    props = mapping.get("properties")
    if props is None:
        if mapping.get("type") == "object":  # dynamic object (localised titles)
            return value if isinstance(value, dict) else None
        if isinstance(value, list):
            return [v for v in value if not isinstance(v, (dict, list))] or None
        return None if isinstance(value, dict) else value
    if isinstance(value, list):
        pruned = [prune(v, mapping) for v in value]
        return [v for v in pruned if v] or None
    if not isinstance(value, dict):
        return None
    out = {k: prune(v, props[k]) for k, v in value.items() if k in props}
    return {k: v for k, v in out.items() if v is not None} or None


class MetadataExtractor:
    """Event fields of a record, from the configured subcount definitions."""

    def __init__(self, subcount_configs):
        """Compile ``event_field`` ← path-or-callable pairs once."""
        self.fields = []
        for config in (subcount_configs or {}).values():
            usage = (config or {}).get("usage_events") or {}
            field, path = usage.get("event_field"), usage.get("extraction_path_for_event")
            if not field or not path:
                continue
            self.fields.append((field, path))
        self._cache = {}
        self.hits = self.misses = 0

    def extract_fields(self, metadata, record_id=None):
        """``{event_field: value}`` for one record document (cached by id)."""
        if record_id is not None and record_id in self._cache:
            self.hits += 1
            return self._cache[record_id]
        self.misses += 1
        out = {}
        for field, path in self.fields:
            try:
                value = path(metadata) if callable(path) else extract_path(metadata, path)
            except Exception:
                value = None
            out[field] = value if value not in ([], {}) else None
        if record_id is not None:
            self._cache[record_id] = out
        return out

    def clear_cache(self):
        """Forget cached records (between months: memory stays bounded)."""
        self._cache.clear()

    def get_cache_stats(self):
        """Hit/miss counters."""
        return {"hits": self.hits, "misses": self.misses, "size": len(self._cache)}


def records_metadata(record_ids, client=None):
    """``{recid: record document}`` for a batch (one query per 1,000 ids)."""
    client = client or current_search_client
    found, ids = {}, sorted(set(record_ids))
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        res = client.search(index=records_index(), body={
            "query": {"terms": {"id": chunk}}, "size": len(chunk), "_source": RECORD_SOURCE})
        for hit in res["hits"]["hits"]:
            found[hit["_source"]["id"]] = hit["_source"]
    return found


class MembershipIntervals:
    """Which communities each record was in at any instant (M1, U1).

    Built from every log document of the batch's records; ``global`` is
    left out (every event counts for ``global``).
    """

    def __init__(self, record_ids, client=None):
        """Read the log once for ``record_ids`` (refreshed first: writes do not refresh)."""
        log.refresh(client)
        changes = defaultdict(list)  # (recid, community) -> [(epoch ms, written, added)]
        for hit in log.iter_documents(record_ids, client):
            s = hit["_source"]
            if s["community_id"] == log.GLOBAL:
                continue
            changes[(s["record_id"], s["community_id"])].append(
                (epoch_ms(s["event_date"]), arrow.get(s["timestamp"]).float_timestamp,
                 s["event_type"] == log.ADDED))
        self._by_record = defaultdict(list)
        for (recid, community), items in changes.items():
            items.sort()
            self._by_record[recid].append(
                (community, [t for t, _, _ in items], [a for _, _, a in items]))

    def intervals(self, recid):
        """``[[community, [epoch ms…], [added?…]], …]`` sorted by community (script params)."""
        return [[c, t, a] for c, t, a in sorted(self._by_record.get(recid, ()))]

    def at(self, recid, instant):
        """Sorted community ids ``recid`` was in at ``instant`` (ISO string)."""
        ms = epoch_ms(instant)
        members = []
        for community, times, added in self._by_record.get(recid, ()):
            i = bisect.bisect_right(times, ms) - 1
            if i >= 0 and added[i]:
                members.append(community)
        return sorted(members)


def epoch_ms(value):
    """Epoch milliseconds of an instant; a naive ISO string is UTC."""
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        when = arrow.get(value).datetime
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp()) * 1000 + when.microsecond // 1000
