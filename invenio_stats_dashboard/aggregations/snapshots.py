# Part of invenio-stats-dashboard (MIT License).
"""Family ``snapshots``: records (added basis) and usage, ``snapshot(D) = snapshot(D−1) + delta(D)``.

Records: records, files and volume add the delta's ``added − removed``;
parents and uploaders add the delta's hidden ``_snapshot`` changes (distinct
parents per files class and distinct owners of the members, end of day minus
start, R4/R4a), so every snapshot describes the members at the end of its
day (R2). Nothing is clamped: a negative value is a bug to see, not hide.
Usage: every metric is summed (U4: ``unique_*`` are visitor-days etc.).

Subcounts: ``all`` keys list every item whose values are not all zero
(by id); ``top`` keys the N largest (S6: records by record count; usage
``by_view`` / ``by_download`` by ``total_events``), ties by id ascending,
zero items never listed. Both come from full per-item counters, which are
kept in the state store (``state.py``) as of the day before the last day
computed: the next run (hourly: it recomputes the bookmarked day) continues
from them. The counters are rebuilt by streaming the delta documents when
they do not describe the day before the run's first day, or when a delta
they were built from was rewritten since (a recompute of late data). So an
hourly run reads one delta document, whatever the length of history.
"""

import hashlib
import json
from datetime import datetime, timezone

from ..exceptions import DeltaDataGapError
from . import documents as docs
from .series import get
from .subcounts import blocks

FORMAT = 1
RECORD_SPLIT = ("metadata_only", "with_files")
VIEW = ("total_events", "unique_visitors", "unique_records", "unique_parents")
DOWNLOAD = VIEW + ("unique_files", "total_volume")


def first_day(ctx, series, community_id):
    """The day of the delta series' first document for the community, or None."""
    delta = get(series.depends_on)
    alias = docs.alias_name(delta)
    if not ctx.alias_exists(alias):
        return None
    res = ctx.client.search(index=alias, body={
        "size": 0, "query": {"term": {"community_id": community_id}},
        "aggs": {"first": {"min": {"field": "period_start"}}}})
    value = res["aggregations"]["first"]["value"]
    return None if value is None else datetime.fromtimestamp(value / 1000, timezone.utc).date()


def compute(ctx, series, community_id, days):
    """Yield ``(day, body)`` for every day of ``days``, in order."""
    kind = RECORDS if series.family == "records" else USAGE
    delta = get(series.depends_on)
    keys = blocks(ctx.subcount_configs, series.family)
    signature = _signature(keys)
    counters, reused = _counters_before(ctx, series, delta, community_id, days[0], kind,
                                        keys, signature)
    deltas = ctx.iter_documents(delta, community_id, days[0], days[-1])
    saved = None
    for day in days:
        doc = next(deltas, None)
        if doc is None or docs.as_day(doc["period_start"][:10]) != day:
            raise DeltaDataGapError(
                f"{delta.name} has no document for {community_id} on {day}: "
                "aggregate the delta series first")
        if day == days[-1] and not (reused and len(days) == 1):
            saved = json.loads(json.dumps(counters))  # as of the day before the last
        kind.apply(counters, doc, keys)
        yield day, kind.render(counters, keys, ctx.top_limit)
    if saved is not None:
        # Reached only when the engine took the last document: a run stopped
        # earlier leaves the older state, which the next run detects and rebuilds.
        ctx.state.put(series.name, community_id, days[-1] - docs.DAY,
                      {"format": FORMAT, "signature": signature, "built": ctx.now,
                       "counters": saved})


def _signature(keys):
    text = json.dumps([(b.key, b.snapshot_type) for b in keys])
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _counters_before(ctx, series, delta, community_id, first, kind, keys, signature):
    """Counters at the end of ``first − 1`` and whether the stored state was exactly that."""
    target = first - docs.DAY
    day, data = ctx.state.get(series.name, community_id)
    if data and data.get("format") == FORMAT and data.get("signature") == signature:
        state_day = docs.as_day(day[:10])
        if state_day <= target and not _rewritten(ctx, delta, community_id, state_day,
                                                   data["built"]):
            counters = data["counters"]
            if state_day < target:
                for doc in ctx.iter_documents(delta, community_id, state_day + docs.DAY,
                                              target):
                    kind.apply(counters, doc, keys)
            return counters, state_day == target
    counters = kind.empty(keys)
    for doc in ctx.iter_documents(delta, community_id, None, target):
        kind.apply(counters, doc, keys)
    return counters, False


def _rewritten(ctx, delta, community_id, through, built):
    """Whether a delta up to ``through`` was written after the state was built."""
    alias = docs.alias_name(delta)
    if not ctx.alias_exists(alias):
        return False
    found = ctx.client.count(index=alias, body={"query": {"bool": {"filter": [
        {"term": {"community_id": community_id}},
        {"range": {"period_start": {"lte": f"{through.isoformat()}T00:00:00"}}},
        {"range": {"timestamp": {"gt": built}}}]}}})
    return found["count"] > 0


def _ranked(items, value, limit):
    """The ``limit`` items with the largest positive ``value``, ties by id ascending."""
    chosen = [(i, v) for i, v in items.items() if value(v) > 0]
    chosen.sort(key=lambda pair: (-value(pair[1]), pair[0]))
    return chosen[:limit]


class RecordsSnapshot:
    """Counters of a records snapshot: totals and every item's values."""

    @staticmethod
    def empty(keys):
        """Zero counters."""
        return {"records": [0, 0], "parents": [0, 0], "files": [0, 0.0], "uploaders": 0,
                "items": {b.key: {} for b in keys}}

    @staticmethod
    def apply(counters, doc, keys):
        """Add one delta document."""
        hidden = doc.get("_snapshot")
        if hidden is None:
            raise DeltaDataGapError(
                f"records delta {doc.get('community_id')} {doc.get('period_start')} has no "
                "_snapshot: recompute the delta series")
        for n, cls in enumerate(RECORD_SPLIT):
            counters["records"][n] += doc["records"]["added"][cls] - doc["records"]["removed"][cls]
            counters["parents"][n] += hidden["parents"][cls]
        for n, name in enumerate(("file_count", "data_volume")):
            counters["files"][n] += doc["files"]["added"][name] - doc["files"]["removed"][name]
        counters["uploaders"] += hidden["uploaders"]
        touched = []
        for block in keys:
            table = counters["items"].setdefault(block.key, {})
            for item in doc.get("subcounts", {}).get(block.key) or ():
                touched.append((table, item["id"]))
                entry = table.setdefault(item["id"], [item["label"], 0, 0, 0, 0, 0, 0.0])
                entry[0] = item["label"]
                for n, cls in enumerate(RECORD_SPLIT):
                    entry[1 + n] += (item["records"]["added"][cls]
                                     - item["records"]["removed"][cls])
                for n, name in enumerate(("file_count", "data_volume")):
                    entry[5 + n] += item["files"]["added"][name] - item["files"]["removed"][name]
        for change in hidden.get("subcounts") or ():
            table = counters["items"].setdefault(change["key"], {})
            touched.append((table, change["id"]))
            entry = table.setdefault(change["id"], [change["id"], 0, 0, 0, 0, 0, 0.0])
            entry[3] += change["metadata_only"]
            entry[4] += change["with_files"]
        for table, ident in touched:  # an item back to zero is forgotten
            if ident in table and not any(table[ident][1:]):
                del table[ident]

    @staticmethod
    def render(counters, keys, limit):
        """The snapshot body (without the fields the engine adds)."""

        def item(ident, e):
            return {"id": ident, "label": e[0],
                    "records": {"metadata_only": e[1], "with_files": e[2]},
                    "parents": {"metadata_only": e[3], "with_files": e[4]},
                    "files": {"file_count": e[5], "data_volume": float(e[6])}}

        subcounts = {}
        for block in keys:
            table = counters["items"].get(block.key, {})
            if block.is_top:
                chosen = _ranked(table, lambda e: e[1] + e[2], limit)
            else:
                chosen = sorted(table.items())
            subcounts[block.key] = [item(i, e) for i, e in chosen]
        r, p, f = counters["records"], counters["parents"], counters["files"]
        return {"total_records": {"metadata_only": r[0], "with_files": r[1]},
                "total_parents": {"metadata_only": p[0], "with_files": p[1]},
                "total_files": {"file_count": f[0], "data_volume": float(f[1])},
                "total_uploaders": counters["uploaders"],
                "subcounts": subcounts}


class UsageSnapshot:
    """Counters of a usage snapshot: summed totals and every item's sums."""

    @staticmethod
    def empty(keys):
        """Zero counters."""
        return {"view": [0] * len(VIEW), "download": [0] * len(DOWNLOAD),
                "items": {b.key: {} for b in keys}}

    @staticmethod
    def apply(counters, doc, keys):
        """Add one delta document."""
        totals = doc.get("totals") or {}
        for side, names in (("view", VIEW), ("download", DOWNLOAD)):
            for n, name in enumerate(names):
                counters[side][n] += (totals.get(side) or {}).get(name) or 0
        for block in keys:
            table = counters["items"].setdefault(block.key, {})
            for item in doc.get("subcounts", {}).get(block.key) or ():
                entry = table.setdefault(item["id"], {"label": item.get("label"),
                                                      "view": [0] * len(VIEW),
                                                      "download": [0] * len(DOWNLOAD)})
                if item.get("label") not in (None, ""):
                    entry["label"] = item["label"]
                for side, names in (("view", VIEW), ("download", DOWNLOAD)):
                    for n, name in enumerate(names):
                        entry[side][n] += (item.get(side) or {}).get(name) or 0
                if not any(entry["view"]) and not any(entry["download"]):
                    table.pop(item["id"])

    @staticmethod
    def render(counters, keys, limit):
        """The snapshot body (without the fields the engine adds)."""

        def sides(values, names, volume):
            return {name: (float(v) if name == volume else v) for name, v in zip(names, values)}

        def item(ident, e):
            label = e["label"] if e["label"] not in (None, "") else ident
            return {"id": ident, "label": label,
                    "view": sides(e["view"], VIEW, None),
                    "download": sides(e["download"], DOWNLOAD, "total_volume")}

        subcounts = {}
        for block in keys:
            table = counters["items"].get(block.key, {})
            if block.is_top:
                subcounts[block.key] = {
                    "by_view": [item(i, e) for i, e in
                                _ranked(table, lambda e: e["view"][0], limit)],
                    "by_download": [item(i, e) for i, e in
                                    _ranked(table, lambda e: e["download"][0], limit)]}
            else:
                subcounts[block.key] = [item(i, e) for i, e in sorted(table.items())]
        return {"totals": {"view": sides(counters["view"], VIEW, None),
                           "download": sides(counters["download"], DOWNLOAD, "total_volume")},
                "subcounts": subcounts}


RECORDS, USAGE = RecordsSnapshot(), UsageSnapshot()
