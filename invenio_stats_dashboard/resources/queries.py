# Part of invenio-stats-dashboard (MIT License).
"""``/api/stats`` query classes (api-and-cache.md §2) and ``compute_category``.

Four kinds, each configured by data from ``categories.py``: raw documents,
composite (the four raw lists), single series and category (series set).
Fixes over upstream (gaps 4, 5): raw documents are sorted by date and paged
with ``search_after`` (no 10,000 cap); every parameter is validated (400,
not 500); an empty range is a 200 with empty results for every kind (raw:
``[]``); the community is read with the caller's identity (404 when not
readable); ``subcount_id`` restricts a single series; the four
created/published raw names are served (every basis is aggregated here).
"""

import psutil
from flask import current_app
from invenio_search.engine import search
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from ..exceptions import InvalidStatsRequest
from . import params as P
from .categories import (
    CATEGORIES,
    COMPOSITE_PARTS,
    RAW_QUERIES,
    SERIES_QUERIES,
    camel,
)
from .permissions import resolve_community
from .transform import build_series_set

def _page_size():
    """Documents per page (spec §4.8): the configured size within MIN..MAX, shrunk
    when a page's projected memory would not fit the budget.

    The budget is ``STATS_DATA_SERIES_MEM_BUDGET_BYTES``, else what is left
    below ``…_MEM_HIGH_WATER_PERCENT`` of RAM given the process's RSS now; a
    page costs ``AVG_DOC_BYTES × INMEMORY_MULTIPLIER × MEM_SAFETY_FACTOR``
    per document (pages are folded and released, so one page is what is held).
    """
    config = current_app.config
    size = config.get("STATS_DATA_SERIES_PAGE_SIZE", 365)
    low = config.get("STATS_DATA_SERIES_PAGE_SIZE_MIN", 50)
    high = config.get("STATS_DATA_SERIES_PAGE_SIZE_MAX", 365)
    size = max(1, low, min(size, high))
    per_doc = (float(config.get("STATS_DATA_SERIES_AVG_DOC_BYTES") or 2048)
               * float(config.get("STATS_DATA_SERIES_INMEMORY_MULTIPLIER") or 4.0)
               * float(config.get("STATS_DATA_SERIES_MEM_SAFETY_FACTOR") or 1.2))
    budget = config.get("STATS_DATA_SERIES_MEM_BUDGET_BYTES")
    if not budget:
        share = float(config.get("STATS_DATA_SERIES_MEM_HIGH_WATER_PERCENT") or 0.75)
        budget = (psutil.virtual_memory().total * share
                  - psutil.Process().memory_info().rss)
    return max(1, low, min(size, int(max(budget, 0) // per_doc)))


def iter_documents(category, community_uuid, start=None, end=None, date_basis="added",
                   client=None):
    """Every ``_source`` of ``category`` for the community in ``[start, end]``, by date.

    Pages of ``STATS_DATA_SERIES_PAGE_SIZE`` sorted by (date field,
    ``community_id``) with ``search_after``: no result-window cap, and each
    page can be folded and released. A missing alias yields nothing.
    """
    client = client or current_search_client
    alias = prefix_index(category.alias(date_basis))
    if not client.indices.exists(index=alias):
        return
    field = category.date_field
    filters = [{"term": {"community_id": community_uuid}}]
    if start or end:
        bounds = {}
        if start:
            bounds["gte"] = f"{start.isoformat()}T00:00:00"
        if end:
            bounds["lte"] = f"{end.isoformat()}T23:59:59"
        filters.append({"range": {field: bounds}})
    body = {"query": {"bool": {"filter": filters}},
            "sort": [{field: "asc"}, {"community_id": "asc"}],
            "size": _page_size(), "track_total_hits": False}
    while True:
        try:
            hits = client.search(index=alias, body=body)["hits"]["hits"]
        except search.exceptions.NotFoundError:
            return
        for hit in hits:
            yield hit["_source"]
        if len(hits) < body["size"]:
            return
        body["search_after"] = hits[-1]["sort"]


def _component_metrics(category, component_names):
    """Metrics to keep per subcount under optimisation (§4.7); ``None``: keep all.

    ``STATS_DASHBOARD_COMPONENT_METRICS_REGISTRY`` maps category (internal or
    query name) → snake subcount → metric → component names. Subcounts not in
    the registry keep every metric (``"*"``).
    """
    registry = current_app.config.get("STATS_DASHBOARD_COMPONENT_METRICS_REGISTRY") or {}
    entry = registry.get(category.internal) or registry.get(category.query)
    if not entry:
        return None
    every = {m.key for m in category.metrics}
    wanted = set(component_names or ())
    keep = {"*": every}
    for subcount, metrics in entry.items():
        keep[subcount] = {_snake(metric) for metric, components in metrics.items()
                          if not wanted or wanted & set(components or ())}
    return keep


def _snake(name):
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _category_set(category, community_uuid, start, end, date_basis, subcounts=None,
                  metrics=None):
    return build_series_set(category, iter_documents(category, community_uuid, start, end,
                                                     date_basis),
                            current_app.config.get("COMMUNITY_STATS_SUBCOUNTS"),
                            subcounts, metrics)


def compute_category(query_name, community_uuid, start_date, end_date, date_basis="added",
                     component_names=None):
    """Series set of a category query (the cache's compute function).

    ``community_uuid`` is already resolved (``global`` or a UUID): no
    permission check here (the caller did it). ``component_names`` given →
    metrics pruned per the registry (§4.7). Plain Python objects; series
    dates year-compacted (§4.3).
    """
    category = CATEGORIES.get(query_name)
    if category is None:
        raise InvalidStatsRequest(f"Unknown category query {query_name!r}; "
                                  f"known: {', '.join(CATEGORIES)}")
    checked = P.validate("category", {"start_date": _iso(start_date),
                                      "end_date": _iso(end_date), "date_basis": date_basis})
    metrics = (_component_metrics(category, component_names)
               if component_names is not None else None)
    return _category_set(category, str(community_uuid), checked["start_date"],
                         checked["end_date"], date_basis, metrics=metrics)


def _iso(value):
    value = P.as_date(value)
    return value.isoformat() if value is not None else None


class _StatsQuery:
    """What invenio-stats needs: ``name``, ``run(**params)``; validation first."""

    kind = None

    def __init__(self, name, **_ignored):
        """invenio-stats passes ``name`` and the config ``params``."""
        self.name = name

    def run(self, **params):
        """Validate, resolve the community with the caller's identity, answer."""
        checked = P.validate(self.kind, params)
        checked["given"] = set(params)
        checked["community_uuid"] = resolve_community(checked["community_id"])
        return self.answer(checked)

    # invenio-stats reads this on a NotFoundError (never raised: see iter_documents)
    metric_fields = {}


class RawDocumentsQuery(_StatsQuery):
    """Aggregation documents as stored, by date (no cap, ``[]`` when none)."""

    kind = "raw"

    def answer(self, p):
        """List of ``_source`` objects."""
        source = RAW_QUERIES[self.name]
        basis = source.basis or p["date_basis"]
        if source.basis and "date_basis" in p["given"] and p["date_basis"] != source.basis:
            raise InvalidStatsRequest(f"{self.name} reads the {source.basis} basis; "
                                      f"date_basis {p['date_basis']!r} contradicts it")
        return list(iter_documents(CATEGORIES[source.category], p["community_uuid"],
                                   p["start_date"], p["end_date"], basis))


class CompositeQuery(_StatsQuery):
    """The four raw lists of one community (§2.4), keys as upstream."""

    kind = "composite"

    def answer(self, p):
        """``{record_deltas_<basis>, record_snapshots_<basis>, usage_deltas, usage_snapshots}``."""
        out = {}
        for key, query in COMPOSITE_PARTS:
            category = CATEGORIES[query]
            if category.family == "records":
                key = f"{key}_{p['date_basis']}"
            out[key] = list(iter_documents(category, p["community_uuid"], p["start_date"],
                                           p["end_date"], p["date_basis"]))
        return out


class CategoryQuery(_StatsQuery):
    """A category's series set (§4)."""

    kind = "category"

    def answer(self, p):
        """Series set; ``optimize`` prunes metrics per the registry (§4.7)."""
        category = CATEGORIES[self.name]
        metrics = (_component_metrics(category, p["component_names"])
                   if p["optimize"] else None)
        return _category_set(category, p["community_uuid"], p["start_date"], p["end_date"],
                             p["date_basis"], metrics=metrics)


class SingleSeriesQuery(_StatsQuery):
    """One subcount's series of one metric (§4.6, gap 5 fixed).

    ``category`` and ``metric`` accept snake_case or camelCase; unknown ones
    are a 400 (upstream: silently ``[]``). ``subcount_id`` keeps only the
    series with that id.
    """

    kind = "series"

    def answer(self, p):
        """List of series."""
        category = CATEGORIES[SERIES_QUERIES[self.name]]
        keys = ["global"] + [k for k, _, _ in category.subcounts(
            current_app.config.get("COMMUNITY_STATS_SUBCOUNTS"))]
        if category.file_presence:
            keys.append("file_presence")
        subcount = _pick("category", p["category"], keys)
        metric = _pick("metric", p["metric"], [m.key for m in category.metrics])
        result = _category_set(category, p["community_uuid"], p["start_date"],
                               p["end_date"], p["date_basis"], subcounts=[subcount],
                               metrics={"*": {metric}})
        if camel(metric) not in result[camel(subcount)]:
            raise InvalidStatsRequest(f"Metric {p['metric']!r} has no series for "
                                      f"{p['category']!r}")
        series = result[camel(subcount)][camel(metric)]
        if p["subcount_id"] is not None:
            series = [s for s in series if s["id"] == p["subcount_id"]]
        return series


def _pick(name, value, known):
    for key in known:
        if value in (key, camel(key)):
            return key
    raise InvalidStatsRequest(f"Unknown {name} {value!r}; known: "
                              f"{', '.join(camel(k) for k in known)}")
