# Part of invenio-stats-dashboard (MIT License).
"""Year blocks → the range a client asked for (pure functions, no services).

The response cache stores one block per calendar year (spec §3.2, §8); a
request may cover part of a year or several years. Upstream answered only the
first year of any range (api-and-cache §9 gap 3); here every year is fetched
and the blocks are cut and joined so that the answer is exactly what the
uncached category query (``/api/stats``) gives for the same range:

* every point gets its full ``YYYY-MM-DD`` date, points outside
  [start, end] are dropped, series with the same ``id`` (within subcount and
  metric) are joined in date order;
* a series left without points is dropped (the uncached query only creates a
  series from a document in range that mentions it); series are ordered by
  their first point, as the transformer orders them by first appearance;
* finally each series is compacted per §4.3 (``year`` + ``MM-DD`` iff all its
  points lie in one calendar year) — so a one-year answer looks exactly like
  the cached block, and a multi-year one carries full dates wherever a series
  spans years.

``restrict`` applies the ``category`` (subcount) and ``metric`` parameters.
Kept apart from the view so the date arithmetic is testable on its own and
the view stays short.
"""

from ..resources.transform import compact


def _full_date(series, point_date):
    """``YYYY-MM-DD`` of a point: ``MM-DD`` points carry the series' ``year``."""
    year = series.get("year")
    if year is not None and len(point_date) == 5:
        return f"{int(year):04d}-{point_date}"
    return point_date


def merge_blocks(blocks, start, end):
    """Year blocks (in year order) → one series set for [start, end] (ISO dates)."""
    merged = {}
    for block in blocks:
        for subcount, metrics in block.items():
            target = merged.setdefault(subcount, {})
            for metric, series_list in metrics.items():
                by_id = target.setdefault(metric, {})
                for series in series_list:
                    points = [[_full_date(series, p[0]), p[1]]
                              for p in series.get("data", [])]
                    points = [p for p in points if start <= p[0] <= end]
                    entry = by_id.get(series["id"])
                    if entry is None:
                        entry = {k: v for k, v in series.items()
                                 if k not in ("year", "data")}
                        entry["data"] = []
                        by_id[series["id"]] = entry
                    entry["data"].extend(points)
    out = {}
    for subcount, metrics in merged.items():
        out[subcount] = {}
        for metric, by_id in metrics.items():
            kept = [s for s in by_id.values() if s["data"]]
            for series in kept:
                series["data"].sort(key=lambda p: p[0])
            kept.sort(key=lambda s: s["data"][0][0])  # stable: ties keep block order
            out[subcount][metric] = [compact(s) for s in kept]
    return out


def restrict(series_set, category=None, metric=None):
    """Only the ``category`` subcount and/or the ``metric`` of each subcount.

    A subcount without that metric (pruned by ``optimize``, or a metric the
    subcount does not have, e.g. ``uploaders`` outside ``global``) is left
    out rather than answered with an empty list.
    """
    if category is not None:
        series_set = {category: series_set.get(category, {})}
    if metric is not None:
        series_set = {sub: {metric: metrics[metric]}
                      for sub, metrics in series_set.items() if metric in metrics}
    return series_set
