# Part of invenio-stats-dashboard (MIT License).
"""Aggregation documents → series set (api-and-cache.md §4.1–4.6).

One generic fold driven by ``categories.py``: documents are consumed one at a
time in date order (so paged results can be folded and released), and the
finished set is plain Python data, ready for JSON, the cache or exports.

Output rules: global series first (``type`` ``bar``), then subcounts in
config order; item series are sparse (a point only on days listing the
item); a metric without documents is ``[]``; keys camelCased; a series
whose points all fall in one calendar year carries ``year`` and ``MM-DD``
dates, else ``YYYY-MM-DD`` (an empty series carries no ``year``).
"""

import gc
import threading
from contextlib import contextmanager

from .categories import FILE_PRESENCE, camel

_PARTS = {}  # path -> its parts: split once, not once per point (a year is ~70,000 points)

GLOBAL_ID, GLOBAL_NAME = "global", "Global"


def _get(doc, path):
    """``doc[a][b]…`` for ``a.b…`` (or its parts); ``None`` when any step is missing."""
    value = doc
    for part in _PARTS.get(path) or _PARTS.setdefault(path, tuple(path.split("."))):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _num(value):
    return value if isinstance(value, (int, float)) else 0


def _sum(block):
    return _num((block or {}).get("metadata_only")) + _num((block or {}).get("with_files"))


def metric_value(metric, source, path):
    """The value of ``metric`` in ``source`` (a document or a subcount item)."""
    value = _get(source, path)
    if metric.op == "value":
        return _num(value)
    if metric.op == "sum":
        return _sum(value)
    value = value or {}
    if metric.op == "net_sum":
        return _sum(value.get("added")) - _sum(value.get("removed"))
    return (_num((value.get("added") or {}).get(metric.field))
            - _num((value.get("removed") or {}).get(metric.field)))


def presence_value(metric, doc, klass):
    """File-presence value of ``klass`` (§4.4): per-class counts; files only ``with_files``."""
    value = _get(doc, metric.global_path) or {}
    if metric.op == "sum":
        return _num(value.get(klass))
    if metric.op == "net_sum":
        return (_num((value.get("added") or {}).get(klass))
                - _num((value.get("removed") or {}).get(klass)))
    return metric_value(metric, doc, metric.global_path) if klass == "with_files" else 0


def _new_series(sid, name, kind, metric):
    return {"id": sid, "name": name, "type": kind, "valueType": metric.value_type,
            "data": []}


class SeriesFolder:
    """Accumulates documents of one category into its series set.

    ``subcounts`` (output snake keys) and ``metrics`` (snake keys) restrict
    what is built — the single-series queries and optimisation (§4.6, §4.7);
    ``None`` means all.
    """

    def __init__(self, category, subcount_config, subcounts=None, metrics=None):
        """Lay out every key up front, so keys without documents stay present."""
        self.category = category
        wanted = set(subcounts) if subcounts is not None else None
        keys = [("global", None, None)] + category.subcounts(subcount_config)
        if category.file_presence:
            keys.append(("file_presence", None, None))
        self.keys = [k for k in keys if wanted is None or k[0] in wanted]
        self.metrics = {}
        for out, _doc_key, _list in self.keys:
            chosen = [m for m in category.metrics
                      if (out == "global" or m.item_path is not None)
                      and (metrics is None or m.key in metrics.get(out, metrics.get("*", ())))]
            self.metrics[out] = chosen
        # out key -> metric key -> {series id: series}
        self.series = {out: {m.key: {} for m in self.metrics[out]} for out, _, _ in self.keys}

    def add(self, doc):
        """Fold one document (documents must come in ascending date order)."""
        day = str(doc.get(self.category.date_field) or "")[:10]
        for out, doc_key, list_name in self.keys:
            if out == "global":
                for m in self.metrics[out]:
                    self._point(out, m, GLOBAL_ID, GLOBAL_NAME, "bar", day,
                                metric_value(m, doc, m.global_path))
            elif out == "file_presence":
                for m in self.metrics[out]:
                    for klass, label in FILE_PRESENCE:
                        self._point(out, m, klass, label, "line", day,
                                    presence_value(m, doc, klass))
            else:
                for item in self._items(doc, doc_key, list_name):
                    sid = str(item.get("id"))
                    name = item["label"] if "label" in item else sid
                    for m in self.metrics[out]:
                        self._point(out, m, sid, name, "line", day,
                                    metric_value(m, item, m.item_path))

    @staticmethod
    def _items(doc, doc_key, list_name):
        value = (doc.get("subcounts") or {}).get(doc_key)
        if list_name is not None:
            value = (value or {}).get(list_name) if isinstance(value, dict) else None
        return [i for i in (value or []) if isinstance(i, dict)]

    def _point(self, out, metric, sid, name, kind, day, value):
        by_id = self.series[out][metric.key]
        series = by_id.get(sid)
        if series is None:
            series = by_id[sid] = _new_series(sid, name, kind, metric)
        series["data"].append([day, value])

    def result(self):
        """The camelCased series set, dates year-compacted per series."""
        return {camel(out): {camel(key): [compact(s) for s in by_id.values()]
                             for key, by_id in metrics.items()}
                for out, metrics in self.series.items()}


def compact(series):
    """Add ``year`` and shorten dates to ``MM-DD`` when all points share a year (§4.3).

    Points are in ascending date order, so the first and last dates decide.
    """
    data = series["data"]
    if data and data[0][0][:4] == data[-1][0][:4]:
        out = {k: v for k, v in series.items() if k != "data"}
        out["year"] = int(data[0][0][:4])
        out["data"] = [[d[5:], v] for d, v in series["data"]]
        return out
    return series


_FOLDING = {"count": 0, "was_enabled": False}
_FOLDING_LOCK = threading.Lock()


@contextmanager
def collector_paused():
    """No cyclic garbage collection while series are built.

    A year block allocates ~70,000 small lists and no reference cycles; the
    collections those allocations trigger (each walking every live object)
    took four fifths of a cold request's time (400 ms → 80 ms measured on
    the demo's usage-delta year). Process-wide, so counted: the collector
    comes back when the last concurrent fold ends, as it was before.
    """
    with _FOLDING_LOCK:
        if _FOLDING["count"] == 0:
            _FOLDING["was_enabled"] = gc.isenabled()
            gc.disable()
        _FOLDING["count"] += 1
    try:
        yield
    finally:
        with _FOLDING_LOCK:
            _FOLDING["count"] -= 1
            if _FOLDING["count"] == 0 and _FOLDING["was_enabled"]:
                gc.enable()


def build_series_set(category, docs, subcount_config, subcounts=None, metrics=None):
    """Series set of ``category`` from ``docs`` (ascending date), see ``SeriesFolder``."""
    with collector_paused():
        folder = SeriesFolder(category, subcount_config, subcounts, metrics)
        for doc in docs:
            folder.add(doc)
        return folder.result()
