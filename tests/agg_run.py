# Part of invenio-stats-dashboard (MIT License).
"""Running the aggregation through its public face and reading back what it wrote."""

import importlib
import inspect

import arrow
import pytest
from invenio_search.engine import search
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from invenio_stats_dashboard.proxies import current_community_stats_service
from invenio_stats_dashboard.services.service import CommunityStatsService

from agg_oracle import SERIES


def _families_landed():
    """The engine and every family implemented (the skeleton raises NotImplementedError)."""
    if not hasattr(CommunityStatsService, "aggregate_stats"):
        return False
    try:
        modules = [importlib.import_module(f"invenio_stats_dashboard.aggregations.{name}")
                   for name in ("records", "records_basis", "snapshots", "usage")]
    except ImportError:
        return False
    return not any("NotImplementedError" in inspect.getsource(m) for m in modules)


LANDED = _families_landed()
engine = pytest.mark.skipif(not LANDED,
                            reason="the aggregation engine and its families have not landed")


def aggregate(start, end, types=None, ignore_bookmark=False):
    """The public face (python-api.md §4.1); every series must report success."""
    result = current_community_stats_service.aggregate_stats(
        community_ids=None, aggregation_types=types, start_date=str(start),
        end_date=str(end), eager=True, update_bookmark=True,
        ignore_bookmark=ignore_bookmark, verbose=False)
    failed = [(r["aggregator"], r["status"], r["error_details"]) for r in result["results"]
              if r["status"] != "success"]
    assert not failed, failed
    assert sorted(r["aggregator"] for r in result["results"]) == sorted(types or SERIES)
    return result


def read_all(series_names=SERIES):
    """``{series: {(community, day): document}}`` of every document of the aliases."""
    out = {}
    for series in series_names:
        alias = prefix_index(SERIES[series][0])
        current_search_client.indices.refresh(index=alias, ignore_unavailable=True)
        docs = {}
        if current_search_client.indices.exists(index=alias):
            for h in search.helpers.scan(current_search_client, index=alias,
                                         query={"query": {"match_all": {}}}):
                s = h["_source"]
                when = s.get("period_start") or s.get("snapshot_date")
                key = (s["community_id"], arrow.get(when).date())
                assert key not in docs, f"two documents for {series} {key}"
                assert h["_id"] == f"{key[0]}-{key[1]}", h["_id"]
                docs[key] = s
        out[series] = docs
    return out


def report(lines, limit=80):
    """The first ``limit`` lines of a mismatch list, for an assertion message."""
    return "\n".join(lines[:limit] + ([f"... {len(lines) - limit} more"]
                                      if len(lines) > limit else []))


def required_from(oracle, series, community):
    """First day a document is required: the community's first membership change (records
    series, all bases) or first counted event (usage). The rules fix what a document says,
    not from which day documents exist: a created/published series may start with days
    before the community's history (back-dated dates), and does not have to."""
    if SERIES[series][2] is None:
        return oracle.first_day(series, community)
    return oracle.first_day("community-records-delta-added-agg", community)
