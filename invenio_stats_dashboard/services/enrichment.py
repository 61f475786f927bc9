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
import hashlib
import json
import threading
from collections import OrderedDict, defaultdict

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


#: Records whose extracted fields are kept: two record groups in flight
#: (``usage_reindexing.server_side.MAX_RECORDS_PER_GROUP`` = 1,000 each).
CACHED_RECORDS = 2000


class MetadataExtractor:
    """Event fields of a record, from the configured subcount definitions.

    Extracted fields are cached per record id, least recently used first out,
    for at most ``cache_size`` records. The cache used to hold every record
    of a month until the month ended, so memory grew with the month's
    distinct records (about 6 kB each with rich metadata: +297 MB at 50,000,
    ``benchmarks/migration_memory_benchmark.py``). The migration extracts
    each record once per month anyway (record groups are disjoint), so the
    bound costs nothing there; the event generator still gets its hits.
    Thread-safe: the migration's groups in flight share one extractor.
    """

    def __init__(self, subcount_configs, cache_size=CACHED_RECORDS):
        """Compile ``event_field`` ← path-or-callable pairs once."""
        self.fields = []
        for config in (subcount_configs or {}).values():
            usage = (config or {}).get("usage_events") or {}
            field, path = usage.get("event_field"), usage.get("extraction_path_for_event")
            if not field or not path:
                continue
            self.fields.append((field, path))
        self.cache_size = cache_size
        self._cache = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def extract_fields(self, metadata, record_id=None):
        """``{event_field: value}`` for one record document (cached by id)."""
        if record_id is not None:
            with self._lock:
                if record_id in self._cache:
                    self.hits += 1
                    self._cache.move_to_end(record_id)
                    return self._cache[record_id]
                self.misses += 1
        out = {}
        for field, path in self.fields:
            try:
                value = path(metadata) if callable(path) else extract_path(metadata, path)
            except Exception:
                value = None
            out[field] = value if value not in ([], {}) else None
        if record_id is not None and self.cache_size:
            with self._lock:
                self._cache[record_id] = out
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return out

    def clear_cache(self):
        """Forget cached records."""
        with self._lock:
            self._cache.clear()

    def get_cache_stats(self):
        """Hit/miss counters and the number of records cached now."""
        return {"hits": self.hits, "misses": self.misses, "size": len(self._cache)}


def records_metadata(record_ids, client=None):
    """``{recid: record document}`` for a batch (one query per 1,000 ids).

    Publishing indexes a record without a refresh: one published a moment ago
    is not searchable yet. Ids not found are looked up once more after a
    refresh of the records index (a no-op when nothing is pending), so such a
    record's events are not left without metadata; purged records stay missing.
    """
    client = client or current_search_client
    ids = sorted(set(record_ids))
    found = _search_records(client, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        client.indices.refresh(index=records_index())
        found.update(_search_records(client, missing))
    return found


def _search_records(client, ids):
    found = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        res = client.search(index=records_index(), body={
            "query": {"terms": {"id": chunk}}, "size": len(chunk), "_source": RECORD_SOURCE})
        for hit in res["hits"]["hits"]:
            found[hit["_source"]["id"]] = hit["_source"]
    return found


class MembershipIntervals:
    """Which communities each record was in at any instant (M1, U1, T3).

    Built from every log document of the batch's records. ``global`` is left
    out of the intervals (every event counts for ``global``) but tells which
    records the log knows at all (``known``): a record without a ``global``
    document has no membership history yet (the backfill has not reached it).
    """

    def __init__(self, record_ids, client=None):
        """Read the log once for ``record_ids`` (refreshed first: writes do not refresh)."""
        log.refresh(client)
        changes = defaultdict(list)  # (recid, community) -> [(epoch ms, written, added)]
        self.known = set()
        for hit in log.iter_documents(record_ids, client):
            s = hit["_source"]
            if s["community_id"] == log.GLOBAL:
                self.known.add(s["record_id"])
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
        """Sorted community ids ``recid`` was in at a stored event's ``instant`` (T3)."""
        ms = event_instant_ms(instant)
        members = []
        for community, times, added in self._by_record.get(recid, ()):
            i = bisect.bisect_right(times, ms) - 1
            if i >= 0 and added[i]:
                members.append(community)
        return sorted(members)


def event_instant_ms(timestamp):
    """T3: a stored event stands for the *last* instant of its stored second.

    Stored events carry whole seconds (invenio-stats drops the fraction), so
    a membership change anywhere in that second counts as before the event.
    The painless twin of this is in ``usage_reindexing.server_side``.
    """
    ms = epoch_ms(timestamp)
    return ms - ms % 1000 + 999


def epoch_ms(value):
    """Epoch milliseconds of an instant; a naive ISO string is UTC."""
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        when = arrow.get(value).datetime
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp()) * 1000 + when.microsecond // 1000


#: Version of what the enrichment writes besides the configured subcount
#: fields. Part of the fingerprint: raising it makes ``re-enrich`` revisit
#: every month once. 1 (no marker in the fingerprint): the first release;
#: 2: ``file_ref`` on downloads (U5).
ENRICHMENT_VERSION = 2


def subcount_digest(subcount_configs):
    """Fingerprint of the event fields the enrichment derives.

    The fields ``COMMUNITY_STATS_SUBCOUNTS`` configures and
    ``ENRICHMENT_VERSION``. Stored with every enrichment (bookmarks, and the
    ``_meta`` of indices made from our templates), so a configuration change
    or a new derived field shows which months are out of date.
    """
    parts = sorted([field, path if isinstance(path, str)
                    else f"{path.__module__}.{path.__qualname__}"]
                   for field, path in MetadataExtractor(subcount_configs).fields)
    parts.append(["enrichment_version", ENRICHMENT_VERSION])
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:16]


def file_fields(recid, file_key):
    """Fields a download derives from its file: ``file_types`` and ``file_ref`` (U5).

    ``file_ref`` = ``<recid>:<file key>``: a distinct file is a (record, key)
    pair, so two records with a file of the same key are two files. The
    painless twin is in ``usage_reindexing.server_side``.
    """
    if not isinstance(file_key, str) or not file_key:
        return {}
    dot = file_key.rfind(".")
    out = {"file_types": [file_key[dot + 1:].lower()] if 0 <= dot < len(file_key) - 1
           else None}
    if recid:
        out["file_ref"] = f"{recid}:{file_key}"
    return out


#: A log document written this long after its ``event_date`` is *retroactive*
#: (backfill, reconciliation): events indexed in between were stamped without it.
RETROACTIVE_LAG_MS = 60_000


def log_mark(client=None):
    """The newest write instant in the membership log (ISO), or None when empty.

    Kept with a month's enrichment: log documents written after it may change
    the month's stamps (``changed_records``).
    """
    client = client or current_search_client
    if not client.indices.exists_alias(name=log.alias_name()):
        return None
    res = client.search(index=log.alias_name(), body={
        "size": 0, "aggs": {"mark": {"max": {"field": "timestamp"}}}})
    value = res["aggregations"]["mark"].get("value_as_string")
    return value


def changed_records(since, before, client=None, page=1000):
    """Record ids whose membership changed retroactively after ``since``.

    Log documents written after ``since`` (``timestamp``), dated before
    ``before`` (``event_date``, the month's end) and written more than
    ``RETROACTIVE_LAG_MS`` after their own date. Live writes are excluded:
    events indexed after them were already stamped with them. Streams a
    composite aggregation (no cap).
    """
    client = client or current_search_client
    if not client.indices.exists_alias(name=log.alias_name()):
        return
    filters = [{"range": {"event_date": {"lt": before}}},
               {"script": {"script": {"lang": "painless", "params": {"lag": RETROACTIVE_LAG_MS},
                "source": "doc['timestamp'].value.toInstant().toEpochMilli() - "
                          "doc['event_date'].value.toInstant().toEpochMilli() > params.lag"}}}]
    if since:
        filters.append({"range": {"timestamp": {"gt": since}}})
    after = None
    while True:
        composite = {"size": page, "sources": [{"r": {"terms": {"field": "record_id"}}}]}
        if after:
            composite["after"] = after
        res = client.search(index=log.alias_name(), body={
            "size": 0, "query": {"bool": {"filter": filters}},
            "aggs": {"records": {"composite": composite}}})
        buckets = res["aggregations"]["records"]["buckets"]
        for bucket in buckets:
            yield bucket["key"]["r"]
        if len(buckets) < page:
            return
        after = res["aggregations"]["records"]["after_key"]
