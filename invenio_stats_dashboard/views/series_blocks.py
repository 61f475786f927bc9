# Part of invenio-stats-dashboard (MIT License).
"""Year blocks → the range a client asked for (pure functions, no services).

The response cache stores one block per calendar year (spec §3.2, §8); a
request may cover part of a year or several years. Upstream answered only the
first year of any range (api-and-cache §9 gap 3); here every year is fetched
and the blocks are cut and joined:

* one calendar year → the block as cached (``year`` key, ``MM-DD`` dates),
  points outside [start, end] dropped;
* several years → every series' points expanded to full ``YYYY-MM-DD`` dates,
  no ``year`` key, series with the same id concatenated in date order, cut to
  [start, end]. A series that exists in one year only keeps its own points.

``restrict`` applies the ``category`` (subcount) and ``metric`` parameters.
Kept apart from the view so the date arithmetic is testable on its own and
the view stays short.
"""


def _full_date(series, point_date):
    """``YYYY-MM-DD`` of a point: ``MM-DD`` points carry the series' ``year``."""
    year = series.get("year")
    if year is not None and len(point_date) == 5:
        return f"{int(year):04d}-{point_date}"
    return point_date


def clip_block(block, start, end):
    """One year's series set with points outside [start, end] (ISO dates) removed.

    The block keeps its compact shape (``year`` + ``MM-DD``), as the dashboard
    reads a single-year answer exactly like the cached block.
    """
    out = {}
    for subcount, metrics in block.items():
        out[subcount] = {}
        for metric, series_list in metrics.items():
            kept = []
            for series in series_list:
                data = [p for p in series.get("data", [])
                        if start <= _full_date(series, p[0]) <= end]
                kept.append({**series, "data": data})
            out[subcount][metric] = kept
    return out


def merge_blocks(blocks, start, end):
    """Several year blocks (in year order) → one series set with full dates.

    Series are matched by ``id`` within (subcount, metric); the first year a
    series appears in fixes its position and its descriptive fields, so the
    global series stays first and subcounts keep their configured order.
    """
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
            series_list = list(by_id.values())
            for series in series_list:
                series["data"].sort(key=lambda p: p[0])
            out[subcount][metric] = series_list
    return out


def restrict(series_set, category=None, metric=None):
    """Only the ``category`` subcount and/or the ``metric`` of each subcount.

    A subcount without that metric (pruned by ``optimize``, or a metric the
    subcount does not have) is left out rather than answered with an empty
    list, so a client can tell "no such series" from "no data".
    """
    if category is not None:
        series_set = {category: series_set.get(category, {})}
    if metric is not None:
        series_set = {sub: {metric: metrics[metric]}
                      for sub, metrics in series_set.items() if metric in metrics}
    return series_set
