# Part of invenio-stats-dashboard (MIT License).
"""Family ``usage``: daily view and download figures of a community (spec §5.1).

Counting rules U1–U5 and T1: an event counts for community ``c`` when ``c``
is stamped on it (every event counts for ``global``), robots and machines
never count (U2), and a day is ``[D, D+1)`` (upstream dropped the last
second, G11). Both enriched indices are read through their aliases.

Exact at any volume: ``total_events`` is a document count (upstream used the
hit total, capped at 10,000, G10), every subcount value of the day is
listed (upstream's ``terms`` kept 1,000, G9), and the distinct counts —
visitors, records, parents, files as (record, file key) pairs (U5) — are
exact, by the counting script of ``usage_script`` (see there why not
``cardinality``).

Work per unit: one request for the unit's daily event counts (which also
refuses downloads enriched before ``file_ref`` existed), then one ``msearch``
(views and downloads) per group of consecutive days holding at most
``EVENT_BUDGET`` events — a quiet community's year is a few requests, a busy
day is one — plus the labels not yet known in this run.
"""

import weakref
from datetime import datetime, timezone

from ..exceptions import UsageEventsNotMigratedError
from ..search_indices.names import events_alias
from ..services.events_log import GLOBAL
from . import documents as docs
from .subcounts import blocks
from .usage_script import aggregation

SIDES = ("view", "download")
#: Distinct-count metric -> event field, per side (in the script's order).
DISTINCT = {"view": {"unique_visitors": "visitor_id", "unique_records": "recid",
                     "unique_parents": "parent_recid"},
            "download": {"unique_visitors": "visitor_id", "unique_records": "recid",
                         "unique_parents": "parent_recid", "unique_files": "file_ref"}}
#: Events whose distinct values one request may hold in the cluster's memory.
EVENT_BUDGET = 20_000
MAX_GROUP_DAYS = 92
#: Downloads of a record's file without the U5 ``file_ref`` (enriched before it existed).
UNREFERENCED = {"filter": {"bool": {
    "filter": [{"exists": {"field": "recid"}}, {"exists": {"field": "file_key"}}],
    "must_not": [{"exists": {"field": "file_ref"}}]}}}
#: Labels found in a run, per context: ``{key: {id: label}}``.
_LABELS = weakref.WeakKeyDictionary()


def zeros(side):
    """A side's metrics with no events."""
    out = {"total_events": 0, **dict.fromkeys(DISTINCT[side], 0)}
    if side == "download":
        out["total_volume"] = 0.0
    return out


def zero_body(usage_blocks):
    """The body of a day without counted events: every configured key, empty."""
    return {"totals": {side: zeros(side) for side in SIDES},
            "subcounts": {b.key: [] for b in usage_blocks}}


def _aliases(ctx):
    """``{side: read alias}`` of the sides whose events exist."""
    return {side: events_alias(side) for side in SIDES
            if ctx.alias_exists(events_alias(side))}


def _query(community_id, first=None, last=None):
    """U1, U2, T1: the community's counted events of days ``first``..``last``."""
    filters = []
    if first is not None:
        start, _ = docs.window(first)
        _, end = docs.window(last)
        filters.append({"range": {"timestamp": {"gte": start[:19], "lt": end[:19]}}})
    if community_id != GLOBAL:
        filters.append({"term": {"community_ids": community_id}})
    return {"bool": {"filter": filters, "must_not": [{"term": {"is_robot": True}},
                                                     {"term": {"is_machine": True}}]}}


def _by_day(aggs):
    """A per-day ``date_histogram`` (keys ``YYYY-MM-DD``) with ``aggs``."""
    return {"date_histogram": {"field": "timestamp", "calendar_interval": "1d",
                               "format": "yyyy-MM-dd", "min_doc_count": 1}, "aggs": aggs}


def _msearch(client, searches):
    """``[(index, body)]`` in one round trip; raises on the first failed search."""
    lines = []
    for index, body in searches:
        lines.extend(({"index": index}, {"size": 0, "track_total_hits": False, **body}))
    responses = client.msearch(body=lines)["responses"]
    for res in responses:
        if "error" in res:
            raise RuntimeError(f"usage aggregation search failed: {res['error']}")
    return responses


def first_day(ctx, series, community_id):
    """The community's first day with a counted view or download (fix G14), or None.

    Upstream started every community at the instance's first view.
    """
    aliases = _aliases(ctx)
    if not aliases:
        return None
    res = ctx.client.search(index=",".join(aliases.values()), body={
        "size": 0, "track_total_hits": False, "query": _query(community_id),
        "aggs": {"first": {"min": {"field": "timestamp"}}}})
    value = res["aggregations"]["first"].get("value")
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc).date()


def compute(ctx, series, community_id, days):
    """Yield ``(day, body)`` for every day of ``days``, in order (spec §5.1 body)."""
    usage_blocks = blocks(ctx.subcount_configs, "usage")
    aliases = _aliases(ctx)
    counts = _day_counts(ctx, aliases, community_id, days) if aliases and days else {}
    for group in _groups(days, counts):
        found = {}
        if any(counts.get(day.isoformat()) for day in group):
            found = _group(ctx, aliases, usage_blocks, community_id, group)
        for day in group:
            yield day, found.get(day.isoformat()) or zero_body(usage_blocks)


def _day_counts(ctx, aliases, community_id, days):
    """``{day ISO: events of both sides}``; refuses downloads without ``file_ref``."""
    query = _query(community_id, days[0], days[-1])
    searches = []
    for side, alias in aliases.items():
        aggs = {"days": _by_day({})}
        if side == "download":
            aggs["unreferenced"] = UNREFERENCED
        searches.append((alias, {"query": query, "aggs": aggs}))
    counts = {}
    for side, res in zip(aliases, _msearch(ctx.client, searches)):
        aggs = res["aggregations"]
        missing = aggs.get("unreferenced", {}).get("doc_count")
        if missing:
            raise UsageEventsNotMigratedError(
                f"{missing} download event(s) between {days[0]} and {days[-1]} have no file "
                "reference (enriched by an earlier version): run 'invenio community-stats "
                "usage-events re-enrich' first.")
        for bucket in aggs["days"]["buckets"]:
            counts[bucket["key_as_string"]] = counts.get(bucket["key_as_string"], 0) + \
                bucket["doc_count"]
    return counts


def _groups(days, counts):
    """Consecutive days holding at most ``EVENT_BUDGET`` events (a bigger day alone)."""
    group, events = [], 0
    for day in days:
        n = counts.get(day.isoformat(), 0)
        if group and (events + n > EVENT_BUDGET or len(group) >= MAX_GROUP_DAYS):
            yield group
            group, events = [], 0
        group.append(day)
        events += n
    if group:
        yield group


def _group(ctx, aliases, usage_blocks, community_id, group):
    """``{day ISO: body}`` for the group's days that have counted events."""
    query = _query(community_id, group[0], group[-1])
    keys = [(b.key, [s.field for s in b.sources]) for b in usage_blocks]
    searches = [(alias, {"query": query, "aggs": {"days": _by_day({"m": aggregation(
        DISTINCT[side].values(), side == "download", keys)})}})
        for side, alias in aliases.items()]
    per_day = {}  # day -> side -> {"t": [...], "k": {...}}
    for side, res in zip(aliases, _msearch(ctx.client, searches)):
        for bucket in res["aggregations"]["days"]["buckets"]:
            per_day.setdefault(bucket["key_as_string"], {})[side] = bucket["m"]["value"]
    labels = _labels(ctx, aliases, usage_blocks, per_day)
    return {day: _body(usage_blocks, sides, labels) for day, sides in per_day.items()}


def _metrics(side, entry):
    """Script entry ``[events, volume, |set|…]`` as the side's metrics."""
    if not entry:
        return zeros(side)
    out = {"total_events": int(entry[0])}
    out.update(zip(DISTINCT[side], (int(n) for n in entry[2:])))
    if side == "download":
        out["total_volume"] = float(entry[1])
    return out


def _body(usage_blocks, sides, labels):
    totals = {side: _metrics(side, (sides.get(side) or {}).get("t")) for side in SIDES}
    subcounts = {}
    for b in usage_blocks:
        found = {side: ((sides.get(side) or {}).get("k") or {}).get(b.key) or {}
                 for side in SIDES}
        ids = sorted(set(found["view"]) | set(found["download"]))
        subcounts[b.key] = [{"id": value, "label": labels.get(b.key, {}).get(value, value),
                             **{side: _metrics(side, found[side].get(value)) for side in SIDES}}
                            for value in ids]
    return {"totals": totals, "subcounts": subcounts}


# -- labels (S7) -------------------------------------------------------------------

def _labels(ctx, aliases, usage_blocks, per_day):
    """``{key: {id: label}}`` for the values of labelled keys, looked up once per run.

    The label is the one stored with the newest event carrying the value (a
    vocabulary title or name, S7); a value without one is labelled by its id.
    """
    known = _LABELS.setdefault(ctx, {})
    searches, asked = [], []
    for b in usage_blocks:
        source = next((s for s in b.sources if s.label_field), None)
        if source is None:
            continue
        cache = known.setdefault(b.key, {})
        ids = sorted({value for sides in per_day.values() for side in sides.values()
                      for value in ((side.get("k") or {}).get(b.key) or {})} - set(cache))
        for start in range(0, len(ids), 1000):
            chunk = ids[start:start + 1000]
            searches.append((",".join(aliases.values()), {
                "query": {"terms": {source.field: chunk}},
                "aggs": {"v": {"terms": {"field": source.field, "include": chunk,
                                         "size": len(chunk)},
                               "aggs": {"newest": {"top_hits": {
                                   "size": 1, "sort": [{"timestamp": "desc"}],
                                   "_source": [source.label_field.split(".")[0]]}}}}}}))
            asked.append((b, source, chunk))
    if searches:
        for (b, source, chunk), res in zip(asked, _msearch(ctx.client, searches)):
            cache = known[b.key]
            for bucket in res["aggregations"]["v"]["buckets"]:
                value = str(bucket["key"])
                hits = bucket["newest"]["hits"]["hits"]
                cache[value] = _label(source, value, hits[0]["_source"] if hits else {})
            for value in chunk:
                cache.setdefault(value, value)
    return known


def _label(source, value, stored):
    """The label next to ``value`` in an event's ``_source`` (list fields: the same element)."""
    root, _, label_path = source.label_field.partition(".")
    field_root, _, id_path = source.field.partition(".")
    node = stored.get(root)
    for candidate in node if isinstance(node, list) else [node]:
        if not isinstance(candidate, dict):
            continue
        if field_root == root and id_path and str(candidate.get(id_path)) != value:
            continue
        label = candidate.get(label_path) if label_path else None
        if label not in (None, "", {}):
            return label
    return value

