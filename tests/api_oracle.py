# Part of invenio-stats-dashboard (MIT License).
"""Expected API series: spec §4 applied to the aggregation oracle's documents.

Written from the spec tables, independently of ``resources/transform.py``
(no shared code, a different shape): the expected result of a category is
``{(subcountKey, metricKey): {series_id: (name, type, valueType, [(YYYY-MM-DD, value)])}}``,
and :func:`normalise` brings an API answer into the same shape (expanding
``MM-DD`` dates with the series' ``year``), so the two compare with ``==``.
"""

from agg_oracle import RECORD_KEYS, USAGE_KEYS

USAGE = {  # metric key -> (side, field)   (§4.4)
    "dataVolume": ("download", "total_volume"),
    "downloadUniqueFiles": ("download", "unique_files"),
    "downloadUniqueParents": ("download", "unique_parents"),
    "downloadUniqueRecords": ("download", "unique_records"),
    "downloadVisitors": ("download", "unique_visitors"),
    "downloads": ("download", "total_events"),
    "viewUniqueParents": ("view", "unique_parents"),
    "viewUniqueRecords": ("view", "unique_records"),
    "viewVisitors": ("view", "unique_visitors"),
    "views": ("view", "total_events"),
}
RECORD_DELTA_ORDER = ["records", "fileCount", "dataVolume", "parents", "uploaders"]
RECORD_SNAPSHOT_ORDER = ["records", "parents", "uploaders", "dataVolume", "fileCount"]
CAMEL = {"resource_types": "resourceTypes", "access_statuses": "accessStatuses",
         "languages": "languages", "subjects": "subjects", "rights": "rights",
         "funders": "funders", "periodicals": "periodicals", "publishers": "publishers",
         "affiliations": "affiliations", "countries": "countries", "file_types": "fileTypes"}


def _both(block):
    return block.get("metadata_only", 0) + block.get("with_files", 0)


def _delta_values(src):
    """Record-delta metric values of a document or item (no uploaders)."""
    rec, par, fil = src["records"], src["parents"], src["files"]
    return {"records": _both(rec["added"]) - _both(rec["removed"]),
            "fileCount": fil["added"]["file_count"] - fil["removed"]["file_count"],
            "dataVolume": fil["added"]["data_volume"] - fil["removed"]["data_volume"],
            "parents": _both(par["added"]) - _both(par["removed"])}


def _snapshot_item_values(item):
    return {"records": _both(item["records"]), "parents": _both(item["parents"]),
            "dataVolume": item["files"]["data_volume"],
            "fileCount": item["files"]["file_count"]}


def _usage_values(sides):
    return {k: sides.get(side, {}).get(field, 0) for k, (side, field) in USAGE.items()}


class _Expected:
    def __init__(self, keys):
        self.out = {k: {} for k in keys}

    def point(self, sub, metric, sid, name, day, value):
        kind = "bar" if sub == "global" else "line"
        vtype = "filesize" if metric == "dataVolume" else "number"
        entry = self.out[(sub, metric)].setdefault(sid, (name, kind, vtype, []))
        entry[3].append((day, value))


def expected_category(query, docs):
    """Expected series of category ``query`` from ``docs`` (ascending dates)."""
    if query.startswith("record-"):
        delta = query == "record-delta-category"
        order = RECORD_DELTA_ORDER if delta else RECORD_SNAPSHOT_ORDER
        item_metrics = [m for m in order if m != "uploaders"]
        subs = list(RECORD_KEYS)
        keys = [("global", m) for m in order] + \
            [(CAMEL[s], m) for s in subs for m in item_metrics] + \
            [("filePresence", m) for m in item_metrics]
    else:
        delta = query == "usage-delta-category"
        subs = list(USAGE_KEYS) if delta else [
            n for s, how in USAGE_KEYS.items()
            for n in ([s] if how == "all" else [f"{s}_by_view", f"{s}_by_download"])]
        cam = {s: CAMEL.get(s) or CAMEL[s.rsplit("_by_", 1)[0]] +
               ("ByView" if s.endswith("_by_view") else "ByDownload") for s in subs}
        keys = [("global", m) for m in USAGE] + [(cam[s], m) for s in subs for m in USAGE]
    exp = _Expected(keys)
    for doc in docs:
        day = (doc.get("period_start") or doc["snapshot_date"])[:10]
        if query == "record-delta-category":
            vals = {**_delta_values(doc), "uploaders": doc["uploaders"]}
            for m in order:
                exp.point("global", m, "global", "Global", day, vals[m])
            rec, fil = doc["records"], doc["files"]
            par = doc["parents"]
            for klass, label in (("metadata_only", "Metadata Only"), ("with_files", "With Files")):
                files = klass == "with_files"
                exp.point("filePresence", "records", klass, label, day,
                          rec["added"][klass] - rec["removed"][klass])
                exp.point("filePresence", "parents", klass, label, day,
                          par["added"][klass] - par["removed"][klass])
                exp.point("filePresence", "fileCount", klass, label, day,
                          (fil["added"]["file_count"] - fil["removed"]["file_count"]) * files)
                exp.point("filePresence", "dataVolume", klass, label, day,
                          (fil["added"]["data_volume"] - fil["removed"]["data_volume"]) * files)
            for s in subs:
                for item in doc["subcounts"].get(s, []):
                    for m, v in _delta_values(item).items():
                        exp.point(CAMEL[s], m, item["id"], item["label"], day, v)
        elif query == "record-snapshot-category":
            tr, tp, tf = doc["total_records"], doc["total_parents"], doc["total_files"]
            vals = {"records": _both(tr), "parents": _both(tp),
                    "uploaders": doc["total_uploaders"], "dataVolume": tf["data_volume"],
                    "fileCount": tf["file_count"]}
            for m in order:
                exp.point("global", m, "global", "Global", day, vals[m])
            for klass, label in (("metadata_only", "Metadata Only"), ("with_files", "With Files")):
                files = klass == "with_files"
                exp.point("filePresence", "records", klass, label, day, tr[klass])
                exp.point("filePresence", "parents", klass, label, day, tp[klass])
                exp.point("filePresence", "fileCount", klass, label, day,
                          tf["file_count"] * files)
                exp.point("filePresence", "dataVolume", klass, label, day,
                          tf["data_volume"] * files)
            for s in subs:
                for item in doc["subcounts"].get(s, []):
                    for m, v in _snapshot_item_values(item).items():
                        exp.point(CAMEL[s], m, item["id"], item["label"], day, v)
        else:
            for m, v in _usage_values(doc["totals"]).items():
                exp.point("global", m, "global", "Global", day, v)
            for s in subs:
                if s.endswith(("_by_view", "_by_download")):
                    base, side = s.rsplit("_by_", 1)
                    items = doc["subcounts"][base][f"by_{side}"]
                else:
                    items = doc["subcounts"][s]
                for item in items:
                    for m, v in _usage_values(item).items():
                        exp.point(cam[s], m, item["id"], item["label"], day, v)
    return exp.out


def normalise(series_set):
    """An API series set in the shape of :func:`expected_category` (dates expanded).

    Also checks the §4.3 invariants that the shape drops: ``year`` present iff
    all points share one year, ``MM-DD`` exactly then, ids unique per list.
    """
    out = {}
    for sub, metrics in series_set.items():
        for metric, series_list in metrics.items():
            ids = [s["id"] for s in series_list]
            assert len(ids) == len(set(ids)), (sub, metric, ids)
            entries = {}
            for s in series_list:
                points = []
                for date, value in s["data"]:
                    if "year" in s:
                        assert len(date) == 5, (sub, metric, s["id"], date)
                        date = f"{s['year']:04d}-{date}"
                    else:
                        assert len(date) == 10, (sub, metric, s["id"], date)
                    points.append((date, value))
                years = {d[:4] for d, _ in points}
                assert ("year" in s) == (len(years) == 1), (sub, metric, s["id"], s.get("year"))
                entries[s["id"]] = (s["name"], s["type"], s["valueType"], points)
            out[(sub, metric)] = entries
    return out


def order_of(series_set):
    """``{subcountKey: [metricKey, …]}`` — the key order the spec fixes (§4.2, §4.4)."""
    return {sub: list(metrics) for sub, metrics in series_set.items()}
