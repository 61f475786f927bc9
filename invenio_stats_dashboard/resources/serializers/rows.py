# Part of invenio-stats-dashboard (MIT License).
"""The one walk over a dashboard response that every tabular export shares.

CSV, XLSX and XML all lay out the same hierarchy — query → subcount → metric →
series → points — and upstream had three hand-written copies of that loop,
which is how the three formats drifted apart (snake_case unit lookups against
camelCase keys, ``MM-DD`` dates copied verbatim; api-and-cache.md §9 gaps 8–9).
Here the walk, the date expansion, the labels and the metric vocabulary
(units, descriptions) live once; the formats only decide where a row goes.
"""

import re
from dataclasses import dataclass
from itertools import groupby

#: Units and descriptions per camelCase metric key (what the series set really
#: carries, §4.4). Upstream looked these up by snake_case names, so most were
#: missing, and it called total event counts "unique downloads/views" (gap 9).
METRICS = {
    "records": ("records", "Records (metadata-only and with files)"),
    "parents": ("parent records", "Parent records (all versions of a work count once)"),
    "fileCount": ("files", "Files attached to records"),
    "dataVolume": ("bytes", "Data volume"),
    "uploaders": ("uploaders", "Distinct users who uploaded records"),
    "views": ("views", "Record page views"),
    "downloads": ("downloads", "File downloads"),
    "viewVisitors": ("visitors", "Distinct visitors who viewed records"),
    "downloadVisitors": ("visitors", "Distinct visitors who downloaded files"),
    "viewUniqueRecords": ("records", "Distinct records viewed"),
    "viewUniqueParents": ("parent records", "Distinct parent records viewed"),
    "downloadUniqueFiles": ("files", "Distinct files downloaded"),
    "downloadUniqueRecords": ("records", "Distinct records with a file downloaded"),
    "downloadUniqueParents": ("parent records", "Distinct parent records with a file downloaded"),
}

#: How the query's documents relate to a day, stated on every XML metric so a
#: reader knows whether to sum the points (deltas) or read the last (snapshots).
MEASUREMENTS = {
    "delta": "change during the day",
    "snapshot": "total at the end of the day",
}

#: Control characters XML 1.0 and XLSX cells cannot hold (tab, LF, CR can).
_ILLEGAL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_MONTH_DAY = re.compile(r"^\d{2}-\d{2}$")
_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class MetricBlock:
    """One metric of one subcount of one query, with its series (maybe none)."""

    query: str
    subcount: str
    metric: str | None  # None: placeholder of a subcount without metrics
    series: list

    @property
    def unit(self):
        """The unit of the metric's values, "" when the metric is not known."""
        return METRICS.get(self.metric, ("", ""))[0]

    @property
    def measurement(self):
        """``delta``, ``snapshot`` or ``other``, from the query name."""
        for kind in MEASUREMENTS:
            if kind in self.query:
                return kind
        return "other"

    @property
    def description(self):
        """A human sentence: what is counted and how the day's value is meant."""
        base = METRICS.get(self.metric, (None, self.metric))[1]
        how = MEASUREMENTS.get(self.measurement)
        return f"{base}, {how}" if how else base

    @property
    def point_count(self):
        """Number of points over all series of the metric."""
        return sum(len(s.get("data") or ()) for s in self.series)


@dataclass(frozen=True)
class Row:
    """One data point with everything a flat export needs beside it."""

    block: MetricBlock
    series_id: str
    label: str
    date: str  # always YYYY-MM-DD
    value: object


def iter_metrics(results):
    """Yield a ``MetricBlock`` per metric, in response order, empty ones too.

    ``results`` is ``{query: series_set}`` (design contract). Query results
    that are not a series set (raw-document lists, single-series lists) have no
    tabular form and are skipped, as upstream did.
    """
    for query, series_set in results.items():
        if not isinstance(series_set, dict):
            continue
        for subcount, metrics in series_set.items():
            if not isinstance(metrics, dict):
                continue
            blocks = [
                MetricBlock(query, subcount, metric, series)
                for metric, series in metrics.items()
                if isinstance(series, list)
            ]
            # A subcount without metrics (all pruned) still exists in the
            # response: a ``metric=None`` block keeps its place (XLSX "No Data"
            # workbook, XML ``seriesSet``) and yields no rows.
            yield from blocks or [MetricBlock(query, subcount, None, [])]


def full_date(series, date):
    """Return the point's date as ``YYYY-MM-DD`` (gap 8).

    A year block compacts dates to ``MM-DD`` and keeps the year once in the
    series (§4.3); an export must not lose it, or two years collide.
    """
    date = str(date)
    if _FULL_DATE.match(date):
        return date
    year = series.get("year")
    if year is not None and _MONTH_DAY.match(date):
        return f"{int(year):04d}-{date}"
    raise ValueError(f"series {series.get('id')!r}: cannot tell the year of date {date!r}")


def text(value):
    """``value`` as a string every format can hold (control characters removed).

    Labels come from record metadata; one stray control character would make
    the XML unparsable and openpyxl refuse the workbook.
    """
    return _ILLEGAL_CHARS.sub("", "" if value is None else str(value))


def label_of(series):
    """The series' display label: ``label``/``name``; multilingual → ``en``, else first."""
    name = series.get("label", series.get("name"))
    if isinstance(name, dict):
        name = name["en"] if "en" in name else next(iter(name.values()), "")
    return text(name)


def iter_points(series):
    """Yield ``(YYYY-MM-DD, value)`` for each point of one series, in order."""
    for date, value in series.get("data") or ():
        yield full_date(series, date), value


def iter_rows(blocks):
    """Flatten metric blocks into ``Row`` objects (series order, then point order)."""
    for block in blocks:
        for series in block.series:
            series_id, label = text(series.get("id", "")), label_of(series)
            for date, value in iter_points(series):
                yield Row(block, series_id, label, date, value)


def group_blocks(blocks, *levels):
    """``groupby`` metric blocks on leading hierarchy levels (``query``, ``subcount``).

    The walk is already in hierarchy order, so grouping is a single pass.
    """
    return groupby(blocks, key=lambda b: tuple(getattr(b, name) for name in levels))


def time_range(blocks):
    """``(first, last)`` full dates over all points, or ``None`` without points."""
    dates = [row.date for row in iter_rows(blocks)]
    return (min(dates), max(dates)) if dates else None


def number(value):
    """A point value as int when integral (counts), else float; ``None`` stays."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    value = float(value)
    return int(value) if value.is_integer() else value
