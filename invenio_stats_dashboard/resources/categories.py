# Part of invenio-stats-dashboard (MIT License).
"""The four data-series categories, as data (api-and-cache.md §4.1–4.5).

One generic transformer (``transform.py``) reads these tables; adding a
metric or a category means adding a row here, not a class. Which subcount
keys a category has is derived from ``COMMUNITY_STATS_SUBCOUNTS`` (the same
rule the aggregators use to write ``subcounts.<key>``), never hard-coded —
this fixes upstream's fixed usage-snapshot special list and its plain
``subjects``/``referrers`` keys (gap 10).
"""

from dataclasses import dataclass

from ..aggregations.series import BASES


@dataclass(frozen=True)
class Metric:
    """How one metric's value is read from a document.

    ``op`` says how the value at the path is combined:

    * ``value``: the number as stored;
    * ``sum``: sum of the ``metadata_only`` + ``with_files`` numbers;
    * ``net``: ``<path>.added`` − ``<path>.removed`` of the leaf ``field``;
    * ``net_sum``: ``sum(added)`` − ``sum(removed)``.

    ``item_path`` is ``None`` for global-only metrics (``uploaders``).
    """

    key: str  # snake_case; camelCased on output
    global_path: str
    item_path: str | None
    op: str = "value"
    field: str | None = None  # leaf for ``net``

    @property
    def value_type(self):
        """``filesize`` for byte volumes (also for usage snapshots: gap 10), else ``number``."""
        return "filesize" if self.key == "data_volume" else "number"


def _usage(key, side, leaf):
    return Metric(key, f"totals.{side}.{leaf}", f"{side}.{leaf}")


#: Usage metrics (deltas and snapshots read the same names), output order of §4.4.
USAGE_METRICS = (
    _usage("data_volume", "download", "total_volume"),
    _usage("download_unique_files", "download", "unique_files"),
    _usage("download_unique_parents", "download", "unique_parents"),
    _usage("download_unique_records", "download", "unique_records"),
    _usage("download_visitors", "download", "unique_visitors"),
    _usage("downloads", "download", "total_events"),
    _usage("view_unique_parents", "view", "unique_parents"),
    _usage("view_unique_records", "view", "unique_records"),
    _usage("view_visitors", "view", "unique_visitors"),
    _usage("views", "view", "total_events"),
)

RECORD_DELTA_METRICS = (
    Metric("records", "records", "records", "net_sum"),
    Metric("file_count", "files", "files", "net", "file_count"),
    Metric("data_volume", "files", "files", "net", "data_volume"),
    Metric("parents", "parents", "parents", "net_sum"),
    Metric("uploaders", "uploaders", None),
)

RECORD_SNAPSHOT_METRICS = (
    Metric("records", "total_records", "records", "sum"),
    Metric("parents", "total_parents", "parents", "sum"),
    Metric("uploaders", "total_uploaders", None),
    Metric("data_volume", "total_files.data_volume", "files.data_volume"),
    Metric("file_count", "total_files.file_count", "files.file_count"),
)

#: The file-presence pseudo-subcount of record categories: ids and labels.
FILE_PRESENCE = (("metadata_only", "Metadata Only"), ("with_files", "With Files"))


@dataclass(frozen=True)
class Category:
    """One category query: where its documents live and what it shows."""

    query: str  # e.g. "record-delta-category"
    internal: str  # e.g. "record_deltas" (upstream's name; registry key)
    family: str  # "records" | "usage"
    kind: str  # "delta" | "snapshot"
    subcount_config_key: str  # "records" | "usage_events"
    metrics: tuple
    file_presence: bool = False

    @property
    def date_field(self):
        """The field holding a document's day."""
        return "period_start" if self.kind == "delta" else "snapshot_date"

    def alias(self, date_basis="added"):
        """Unprefixed alias of the documents (record aliases carry the basis)."""
        if self.family == "records":
            return f"stats-community-records-{self.kind}-{date_basis}"
        return f"stats-community-usage-{self.kind}"

    def subcounts(self, config):
        """``[(output_key, doc_key, list_name)]`` in config order.

        ``list_name`` is ``by_view``/``by_download`` for the two keys of a
        usage-snapshot ``top`` subcount, else ``None`` (the doc value is the
        item list). A subcount takes part iff its block for this family has
        ``source_fields`` — exactly when the aggregators write it.
        """
        keys = []
        for name, blocks in (config or {}).items():
            block = (blocks or {}).get(self.subcount_config_key) or {}
            if not block.get("source_fields"):
                continue
            if (self.family, self.kind) == ("usage", "snapshot") and \
                    block.get("snapshot_type") == "top":
                keys += [(f"{name}_by_view", name, "by_view"),
                         (f"{name}_by_download", name, "by_download")]
            else:
                keys.append((name, name, None))
        return keys


CATEGORIES = {
    c.query: c for c in (
        Category("record-delta-category", "record_deltas", "records", "delta", "records",
                 RECORD_DELTA_METRICS, file_presence=True),
        Category("record-snapshot-category", "record_snapshots", "records", "snapshot",
                 "records", RECORD_SNAPSHOT_METRICS, file_presence=True),
        Category("usage-delta-category", "usage_deltas", "usage", "delta", "usage_events",
                 USAGE_METRICS),
        Category("usage-snapshot-category", "usage_snapshots", "usage", "snapshot",
                 "usage_events", USAGE_METRICS),
    )
}

#: Single-series query name → its category query name (§2.2).
SERIES_QUERIES = {
    "record-delta-series": "record-delta-category",
    "record-snapshot-series": "record-snapshot-category",
    "usage-delta-series": "usage-delta-category",
    "usage-snapshot-series": "usage-snapshot-category",
}


@dataclass(frozen=True)
class RawSource:
    """A raw-documents query: one category's documents, maybe with a fixed basis."""

    category: str  # CATEGORIES key
    basis: str | None = None  # fixed basis of the name (None: the date_basis param)


#: Raw query name → source (§2.2, plus the four created/published names upstream
#: comments out: every basis is aggregated here, so every basis is served).
RAW_QUERIES = {
    "community-usage-delta": RawSource("usage-delta-category"),
    "community-usage-snapshot": RawSource("usage-snapshot-category"),
    **{f"community-record-delta-{b}": RawSource("record-delta-category", b) for b in BASES},
    **{f"community-record-snapshot-{b}": RawSource("record-snapshot-category", b)
       for b in BASES},
}

#: Composite query names (§2.4): ``global-stats`` defaults to ``global``.
COMPOSITE_QUERIES = ("community-stats", "global-stats")

#: Composite result keys → category (record keys get ``_<basis>`` appended).
COMPOSITE_PARTS = (
    ("record_deltas", "record-delta-category"),
    ("record_snapshots", "record-snapshot-category"),
    ("usage_deltas", "usage-delta-category"),
    ("usage_snapshots", "usage-snapshot-category"),
)


def camel(name):
    """``access_statuses`` → ``accessStatuses`` (output keys, §4.5)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


#: Query kind → class (import string) of ``resources/queries.py``.
QUERY_CLASSES = {
    "raw": "invenio_stats_dashboard.resources.queries:RawDocumentsQuery",
    "composite": "invenio_stats_dashboard.resources.queries:CompositeQuery",
    "series": "invenio_stats_dashboard.resources.queries:SingleSeriesQuery",
    "category": "invenio_stats_dashboard.resources.queries:CategoryQuery",
}


def stats_queries(permission_factory):
    """``COMMUNITY_STATS_QUERIES``: all 18 names → invenio-stats query entries.

    Built from the tables above so that names, kinds and classes cannot
    drift apart; ``permission_factory`` must be a callable (invenio-stats and
    InvenioRDM call it, they do not import it).
    """
    names = ([(n, "raw") for n in RAW_QUERIES] + [(n, "composite") for n in COMPOSITE_QUERIES]
             + [(n, "series") for n in SERIES_QUERIES] + [(n, "category") for n in CATEGORIES])
    return {name: {"cls": QUERY_CLASSES[kind], "permission_factory": permission_factory,
                   "params": {}} for name, kind in names}
