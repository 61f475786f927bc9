# Part of invenio-stats-dashboard (MIT License).
"""What the aggregations have done, read back: status, documents, clearing, destroying.

Behind the service methods ``get_aggregation_status``, ``read_stats``,
``clear_aggregation_bookmarks`` and the ``status``, ``read``,
``clear-bookmarks`` and ``destroy-indices`` commands. Every reader pages
(composite aggregations, ``search_after``): no community or day is left out.
"""

from datetime import datetime, timezone

from invenio_search.engine import search
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from ..search_indices.names import BOOKMARKS_COMMUNITY
from . import documents as docs
from .bookmarks import CommunityBookmarkAPI
from .series import SERIES, in_order
from .state import INDEX as STATE_INDEX
from .state import AggregationState


def short_name(series):
    """Upstream's label in ``status``: ``delta-added``, ``community-usage-delta`` …"""
    name = series.name.removesuffix("-agg")
    return name.removeprefix("community-records-")


def query_name(series):
    """The read query of a series (upstream's ``community-record-delta-added`` …)."""
    return series.name.removesuffix("-agg").replace("community-records-", "community-record-")


QUERY_NAMES = {query_name(s): s for s in SERIES}


def series_for_query(query_type):
    """The series read by ``query_type`` (all when None)."""
    return [QUERY_NAMES[query_type]] if query_type else in_order()


def _document_spans(client, series, community_ids=None):
    """``{community: (first day, last day, documents)}`` of one series (composite paging)."""
    alias = docs.alias_name(series)
    if not client.indices.exists_alias(name=alias):
        return None
    client.indices.refresh(index=alias)
    query = {"terms": {"community_id": list(community_ids)}} if community_ids else {
        "match_all": {}}
    spans, after = {}, None
    while True:
        composite = {"size": 500, "sources": [{"c": {"terms": {"field": "community_id"}}}]}
        if after:
            composite["after"] = after
        res = client.search(index=alias, body={"size": 0, "query": query, "aggs": {"by": {
            "composite": composite, "aggs": {
                "first": {"min": {"field": series.date_field}},
                "last": {"max": {"field": series.date_field}}}}}})["aggregations"]["by"]
        for b in res["buckets"]:
            spans[b["key"]["c"]] = (docs.as_day(b["first"]["value_as_string"]),
                                    docs.as_day(b["last"]["value_as_string"]),
                                    b["doc_count"])
        after = res.get("after_key")
        if not res["buckets"] or not after:
            return spans


def _bookmarks(client):
    """``{(series name, community): day}`` of every aggregation bookmark."""
    index = prefix_index(BOOKMARKS_COMMUNITY)
    if not client.indices.exists(index=index):
        return {}
    client.indices.refresh(index=index)
    names = [s.name for s in SERIES]
    return {(h["_source"]["aggregation_type"], h["_source"]["community_id"]):
            docs.as_day(h["_source"]["date"])
            for h in search.helpers.scan(client, index=index, query={
                "query": {"terms": {"aggregation_type": names}}})}


def aggregation_status(community_ids, client=None, today=None):
    """Per community and series: first/last document, documents, bookmark, days behind.

    ``completeness`` is the share of the days from the series' first day
    to today that lie before its bookmark (1.0: up to date).
    """
    client = client or current_search_client
    today = today or datetime.now(timezone.utc).date()
    marks = _bookmarks(client)
    out = {c: {} for c in community_ids}
    for series in in_order():
        spans = _document_spans(client, series, community_ids)
        for community_id in community_ids:
            first, last, count = (spans or {}).get(community_id, (None, None, 0))
            mark = marks.get((series.name, community_id))
            row = {"index_exists": spans is not None, "documents": count,
                   "first_day": first, "last_day": last, "bookmark": mark,
                   "days_behind": (today - mark).days if mark else None,
                   "days_since_last": (today - last).days if last else None,
                   "completeness": 0.0}
            if first and mark:
                row["completeness"] = min(1.0, max(0.0, ((mark - first).days + 1)
                                                   / ((today - first).days + 1)))
            out[community_id][series.name] = row
    return out


def read_documents(community_id, start, end, series_list, client=None):
    """``{query name: [documents]}`` of a community between two days, in day order."""
    from .engine import Context

    client = client or current_search_client
    ctx = Context(client=client)
    found = {}
    for series in series_list:
        alias = docs.alias_name(series)
        if client.indices.exists_alias(name=alias):
            client.indices.refresh(index=alias)
        found[query_name(series)] = list(ctx.iter_documents(series, community_id, start, end))
    return found


def clear_bookmarks(series_list, community_ids=None, client=None):
    """Delete bookmarks (and the state kept with them); ``{community: [series names]}``.

    ``community_ids`` None: every community, ``global`` included.
    """
    client = client or current_search_client
    state = AggregationState(client)
    cleared = {}
    marks = _bookmarks(client)
    for (name, community_id) in sorted(marks):
        if name not in {s.name for s in series_list}:
            continue
        if community_ids is not None and community_id not in community_ids:
            continue
        if CommunityBookmarkAPI(client, name).clear_bookmark(community_id):
            cleared.setdefault(community_id, []).append(name)
        state.delete(name, community_id)
    return cleared


def destroy_targets(client=None):
    """``(to delete, kept with why)`` among this instance's (prefixed) indices.

    Enriched event indices are deleted only while their stock month still
    exists: otherwise they hold the only copy of those events.
    """
    client = client or current_search_client
    stems = ["stats-community-events*", "stats-community-records-delta-*",
             "stats-community-records-snapshot-*", "stats-community-usage-delta*",
             "stats-community-usage-snapshot*", f"{BOOKMARKS_COMMUNITY}*",
             "stats-bookmarks-reindexing*", f"{STATE_INDEX}*"]
    found = set()
    for stem in stems:
        found.update(client.indices.get(index=prefix_index(stem), ignore_unavailable=True,
                                        allow_no_indices=True, expand_wildcards="all"))
    kept = {}
    for stem in ("events-stats-record-view-*-v2.0.0", "events-stats-file-download-*-v2.0.0"):
        names = client.indices.get(index=prefix_index(stem), ignore_unavailable=True,
                                   allow_no_indices=True, expand_wildcards="all")
        for name in names:
            stock = name.removesuffix("-v2.0.0")
            concrete = client.indices.get(index=stock, ignore_unavailable=True,
                                          allow_no_indices=True)
            if stock in concrete:
                found.add(name)
            else:
                kept[name] = "the only copy of its events (the stock month is gone)"
    return sorted(found), kept
