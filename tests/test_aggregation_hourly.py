# Part of invenio-stats-dashboard (MIT License).
"""The hourly run's cost and its bookmark guarantee (issue 11: hourly run < 30 s, flat).

An hourly run refreshes and bookmarks once per step of a community's chain
(the deltas, then the snapshots), not once per (series, community) unit: the
requests are seen through :class:`FaultProxy` in front of the real cluster.
Batching must not weaken X2: a bookmark is written only after the refresh of
the documents it promises succeeded — a refused refresh leaves every
bookmark where it was, and the next run completes the same documents.
"""

from urllib.parse import parse_qs, urlsplit

import pytest
from invenio_search.proxies import current_search_client

from invenio_stats_dashboard.aggregations.bookmarks import CommunityBookmarkAPI
from invenio_stats_dashboard.aggregations.runner import aggregate

from agg_helpers import (
    DAY,
    DELTA,
    SNAPSHOT,
    TODAY,
    bookmarks,
    history_fixture,
    oracle,
    read_all,
    reset,
    stepped_config,
    valid_through_bookmarks,
)
from fault_proxy import FaultProxy

SERIES = [DELTA, SNAPSHOT]
pytestmark = pytest.mark.usefixtures("agg_test_family")
app_config = stepped_config(100)
history = history_fixture(["alpha", "beta", "global"])


def run(history, **kwargs):
    kwargs.setdefault("community_ids", history["communities"])
    return aggregate(SERIES, **kwargs)


def proxied(create_app, app_config, proxy):
    return create_app(**{**app_config,
                         "SEARCH_HOSTS": [{"host": "127.0.0.1", "port": proxy.port}],
                         "SEARCH_CLIENT_CONFIG": {"timeout": 60, "max_retries": 0}})


def move_bookmarks_back(history, day):
    """As if the last runs were ``TODAY - day``: every bookmark at that day."""
    for name in SERIES:
        for community in history["communities"]:
            CommunityBookmarkAPI(current_search_client, name).set_bookmark(
                community, day.isoformat())


def test_an_hourly_run_refreshes_once_per_step_and_bookmarks_without_refresh(
        history, create_app, app_config):
    reset()
    expected = oracle(history["changes"])
    assert run(history, until_caught_up=True)["caught_up"]
    move_bookmarks_back(history, TODAY - 2 * DAY)  # three days per unit, as after a pause
    with FaultProxy(lambda method, path: None) as proxy:
        with proxied(create_app, app_config, proxy).app_context():
            report = run(history)
    assert all(r["status"] == "success" for r in report["results"]), report
    refreshes = [p for _, p, _ in proxy.requests if urlsplit(p).path.endswith("/_refresh")]
    assert len(refreshes) == 2 * len(history["communities"])  # deltas' step, snapshots'
    assert not [p for _, p, _ in proxy.requests  # bookmarks are read by GET (real time)
                if parse_qs(urlsplit(p).query).get("refresh", ["false"])[0] != "false"]
    assert read_all() == expected
    assert bookmarks() == {(s, c): TODAY for s in SERIES for c in history["communities"]}


def test_a_refused_refresh_leaves_every_bookmark_where_it_was(
        history, create_app, app_config):
    """X2 with batched commits: no bookmark promises documents not made searchable."""
    reset()
    expected = oracle(history["changes"])
    assert run(history, until_caught_up=True)["caught_up"]
    back = TODAY - 5 * DAY
    move_bookmarks_back(history, back)

    def refuse_refresh(method, path):
        if urlsplit(path).path.endswith("/_refresh"):
            return 503, {"error": {"type": "unavailable", "reason": "node left"},
                         "status": 503}
        return None

    with FaultProxy(refuse_refresh) as proxy:
        with proxied(create_app, app_config, proxy).app_context():
            report = run(history)
    assert report["stopped"] and report["stopped"].startswith(
        "search cluster unavailable"), report
    assert any(i for _, p, i in proxy.requests if i)  # a refresh was refused
    assert set(bookmarks().values()) == {back}
    assert valid_through_bookmarks(expected)
    report = run(history)
    assert all(r["status"] == "success" for r in report["results"]), report
    assert read_all() == expected
    assert bookmarks() == {(s, c): TODAY for s in SERIES for c in history["communities"]}
