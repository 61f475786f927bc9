# Part of invenio-stats-dashboard (MIT License).
"""``/api/stats`` queries over HTTP against the oracle (issue 12, api-and-cache.md §2, §4).

The acceptance history of ``agg_history`` is driven through the real RDM
services and aggregated through the service's public face. Expected answers
never come from the code under test: raw documents must be exactly what the
aggregation stored (itself checked field by field against ``agg_oracle``
here too), and series sets are ``api_oracle`` — spec §4 written out
independently — applied to the *oracle's* documents. All three date bases.
"""

import json
import uuid
from datetime import date, timedelta

import pytest
from invenio_accounts.testutils import login_user_via_session
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from agg_compare import diff
from agg_history import LAST_DAY, Driver, day, drive, emit_live, enable_dashboard, \
    init_journal_field, plan_usage
from agg_oracle import GLOBAL, Oracle
from agg_run import aggregate, engine, read_all
from api_oracle import expected_category, normalise, order_of

TOP_LIMIT = 2
FIRST, LAST = day(0), day(LAST_DAY)
BASES = ("added", "created", "published")
CATEGORY_SERIES = {  # category query -> series name pattern (records: per basis)
    "record-delta-category": "community-records-delta-{}-agg",
    "record-snapshot-category": "community-records-snapshot-{}-agg",
    "usage-delta-category": "community-usage-delta-agg",
    "usage-snapshot-category": "community-usage-snapshot-agg",
}
RAW = {f"community-record-{kind}-{b}": f"community-records-{kind}-{b}-agg"
       for kind in ("delta", "snapshot") for b in BASES}
RAW |= {"community-usage-delta": "community-usage-delta-agg",
        "community-usage-snapshot": "community-usage-snapshot-agg"}

pytestmark = engine


@pytest.fixture(scope="module")
def app_config(app_config):
    """Small top limit (cut lists), the journal field (periodicals), small pages (paging)."""
    from invenio_rdm_records.contrib.journal import JOURNAL_CUSTOM_FIELDS, JOURNAL_NAMESPACE

    app_config["COMMUNITY_STATS_TOP_SUBCOUNT_LIMIT"] = TOP_LIMIT
    app_config["RDM_NAMESPACES"] = {**JOURNAL_NAMESPACE}
    app_config["RDM_CUSTOM_FIELDS"] = [*JOURNAL_CUSTOM_FIELDS]
    app_config["STATS_DATA_SERIES_PAGE_SIZE"] = 7  # several search_after pages per query
    app_config["STATS_DATA_SERIES_PAGE_SIZE_MIN"] = 1
    # logged-in test clients hold a session cookie; browsers send X-CSRFToken
    app_config["REST_CSRF_ENABLED"] = False
    return app_config


@pytest.fixture(scope="module")
def world(services, identities, communities):
    """The history aggregated; the oracle; stored documents; slugs of a and b."""
    a, b = communities["alpha"].id, communities["beta"].id
    init_journal_field(services)
    for community in (a, b):
        enable_dashboard(community)
    driver = Driver(identities, communities)
    drive(driver, a, b)
    planned = plan_usage(driver)
    emit_live(planned)
    oracle = Oracle(driver.records(), driver.history, [e for e, _, _ in planned],
                    top_limit=TOP_LIMIT)
    aggregate(FIRST, LAST)
    return {"oracle": oracle, "stored": read_all(), "a": a, "b": b,
            "slug": {a: communities["alpha"].data["slug"], b: communities["beta"].data["slug"],
                     GLOBAL: GLOBAL}}


@pytest.fixture()
def client(app):
    """A fresh (anonymous) client of the API app per test."""
    with app.test_client() as c:
        yield c


def post(client, body):
    """POST ``/api/stats`` (the API app serves it at ``/stats``): (status, JSON)."""
    res = client.post("/stats", data=json.dumps(body), content_type="application/json")
    return res.status_code, res.get_json()


def stored_days(world, series, community, start=None, end=None):
    """Days the aggregation stored, ascending, within ``[start, end]``."""
    return sorted(d for c, d in world["stored"][series] if c == community
                  and (start is None or d >= start) and (end is None or d <= end))


def rounded(value):
    """Floats to 6 places, recursively (volumes are sums of floats)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, (list, tuple)):
        return type(value)(rounded(v) for v in value)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


# --- raw documents ---------------------------------------------------------------

def test_raw_queries_return_the_stored_documents_by_date(world, client):
    """All eight raw names (created/published too), ids by slug, UUID and ``global``."""
    mid = day(10)
    body, wanted = {}, {}
    for name, series in RAW.items():
        for community in (world["a"], world["b"], GLOBAL):
            for ident in {community, world["slug"][community]}:
                key = f"{name}|{ident}"
                body[key] = {"stat": name, "params": {"community_id": ident,
                                                      "start_date": str(mid)}}
                wanted[key] = (series, community)
    status, result = post(client, body)
    assert status == 200, result
    assert set(result) == set(body)
    for key, (series, community) in wanted.items():
        days = stored_days(world, series, community, start=mid)
        assert days, key  # the check below must compare something
        expected = [world["stored"][series][(community, d)] for d in days]
        assert result[key] == expected, key
        for d, doc in zip(days, result[key]):
            lines = diff(world["oracle"].expected(series, community, d), doc)
            assert not lines, (key, d, lines[:5])


def test_composite_query_has_the_four_lists_of_the_basis(world, client):
    body = {f"{q}|{b}": {"stat": q, "params": {"community_id": world["slug"][world["a"]],
                                               "date_basis": b, "end_date": str(day(20))}}
            for q in ("community-stats", "global-stats") for b in BASES}
    body["g"] = {"stat": "global-stats"}
    status, result = post(client, body)
    assert status == 200, result
    for b in BASES:
        for q in ("community-stats", "global-stats"):
            out = result[f"{q}|{b}"]
            assert set(out) == {f"record_deltas_{b}", f"record_snapshots_{b}",
                                "usage_deltas", "usage_snapshots"}
            for key, series in ((f"record_deltas_{b}", f"community-records-delta-{b}-agg"),
                                ("usage_snapshots", "community-usage-snapshot-agg")):
                days = stored_days(world, series, world["a"], end=day(20))
                assert days and out[key] == [world["stored"][series][(world["a"], d)]
                                             for d in days], (q, b, key)
    days = stored_days(world, "community-usage-delta-agg", GLOBAL)
    assert [d["period_start"][:10] for d in result["g"]["usage_deltas"]] == \
        [str(d) for d in days]


# --- series sets -------------------------------------------------------------------

def expected_set(world, query, community, basis, start=None, end=None):
    series = CATEGORY_SERIES[query].format(basis)
    docs = [world["oracle"].expected(series, community, d)
            for d in stored_days(world, series, community, start, end)]
    assert docs
    return expected_category(query, docs)


@pytest.mark.parametrize("basis", BASES)
def test_category_queries_equal_the_oracle(world, client, basis):
    """Every series point of the four categories, a, b and global, whole range and a slice."""
    start, end = day(3), day(30)
    body = {}
    for query in CATEGORY_SERIES:
        for community in (world["a"], world["b"], GLOBAL):
            params = {"community_id": world["slug"][community], "date_basis": basis}
            body[f"{query}|{community}|all"] = {"stat": query, "params": params}
            body[f"{query}|{community}|cut"] = {"stat": query, "params": {
                **params, "start_date": str(start), "end_date": str(end)}}
    status, result = post(client, body)
    assert status == 200, result
    for key, got in result.items():
        query, community, span = key.split("|")
        cut = (start, end) if span == "cut" else (None, None)
        expected = expected_set(world, query, community, basis, *cut)
        assert rounded(normalise(got)) == rounded(expected), key
        globals_ = [s["id"] for s in got["global"][next(iter(got["global"]))]]
        assert globals_ == ["global"], key


def test_usage_snapshot_keys_follow_the_config(world, client):
    """Gap 10: no plain ``subjects``/``referrers`` keys; top keys split; volume is filesize."""
    status, result = post(client, {"u": {"stat": "usage-snapshot-category",
                                         "params": {"community_id": world["slug"][world["a"]]}}})
    assert status == 200
    keys = set(result["u"])
    assert not keys & {"subjects", "referrers", "subjectsByView", "referrersByView",
                       "languages", "countries"}
    assert {"countriesByView", "countriesByDownload", "languagesByView", "accessStatuses",
            "fileTypes"} <= keys
    assert result["u"]["countriesByView"]["dataVolume"], "the history has downloads by country"
    assert {s["valueType"] for s in result["u"]["countriesByView"]["dataVolume"]} == \
        {"filesize"}


def test_single_series_honours_category_metric_and_subcount_id(world, client):
    """Snake or camel names; ``subcount_id`` keeps one item's series (gap 5)."""
    a = world["a"]
    exp = expected_set(world, "usage-delta-category", a, "added")
    rexp = expected_set(world, "record-delta-category", a, "published")
    body = {
        "snake": {"stat": "usage-delta-series", "params": {
            "community_id": world["slug"][a], "category": "access_statuses",
            "metric": "view_visitors"}},
        "camel": {"stat": "usage-delta-series", "params": {
            "community_id": a, "category": "accessStatuses", "metric": "viewVisitors"}},
        "one": {"stat": "usage-delta-series", "params": {
            "community_id": a, "category": "accessStatuses", "metric": "viewVisitors",
            "subcount_id": "open"}},
        "default": {"stat": "usage-delta-series", "params": {"community_id": a}},
        "rec": {"stat": "record-delta-series", "params": {
            "community_id": a, "category": "fileTypes", "metric": "dataVolume",
            "date_basis": "published"}},
    }
    status, result = post(client, body)
    assert status == 200, result
    whole = exp[("accessStatuses", "viewVisitors")]
    assert len(whole) >= 1 and "open" in whole
    assert rounded(normalise({"x": {"y": result["snake"]}})[("x", "y")]) == rounded(whole)
    assert result["camel"] == result["snake"]
    assert [s["id"] for s in result["one"]] == ["open"]
    assert result["one"] == [s for s in result["snake"] if s["id"] == "open"]
    assert rounded(normalise({"x": {"y": result["default"]}})[("x", "y")]) == \
        rounded(exp[("global", "views")])
    assert rounded(normalise({"x": {"y": result["rec"]}})[("x", "y")]) == \
        rounded(rexp[("fileTypes", "dataVolume")])


def test_compute_category_is_the_category_query(world, client, app):
    """The cache's function gives what the HTTP query gives (same range, resolved id)."""
    from invenio_stats_dashboard.resources.queries import compute_category

    a = world["a"]
    status, result = post(client, {"q": {"stat": "record-snapshot-category", "params": {
        "community_id": a, "date_basis": "created", "start_date": str(FIRST),
        "end_date": str(LAST)}}})
    assert status == 200
    computed = compute_category("record-snapshot-category", a, str(FIRST), LAST, "created")
    assert computed == result["q"]
    # key order (global first, config order, metric order of §4.4): JSON over
    # /api/stats sorts keys (Flask), the Python result keeps the spec's order
    order = {}
    for sub, metric in expected_set(world, "record-snapshot-category", a, "created"):
        order.setdefault(sub, []).append(metric)
    assert order_of(computed) == order
    assert list(computed)[0] == "global" and list(computed)[-1] == "filePresence"


# --- empty ranges, validation ------------------------------------------------------

def test_an_empty_range_is_200_with_empty_results_for_every_kind(world, client):
    far = {"community_id": world["slug"][world["a"]], "start_date": "1999-01-01",
           "end_date": "1999-12-31"}
    status, result = post(client, {
        "raw": {"stat": "community-record-delta-created", "params": far},
        "comp": {"stat": "community-stats", "params": far},
        "series": {"stat": "record-snapshot-series", "params": {**far, "metric": "records"}},
        "cat": {"stat": "usage-delta-category", "params": far},
    })
    assert status == 200, result
    assert result["raw"] == [] and result["series"] == []
    assert result["comp"] == {"record_deltas_added": [], "record_snapshots_added": [],
                              "usage_deltas": [], "usage_snapshots": []}
    assert result["cat"]["global"]["views"] == []
    assert all(v == [] for metrics in result["cat"].values() for v in metrics.values())
    assert len(result["cat"]) == 11  # global + the ten usage-delta subcounts: keys stay


@pytest.mark.parametrize("stat, params, words", [
    ("usage-delta-category", {"colour": "red"}, "colour"),
    ("community-usage-delta", {"start_date": "2024-13-01"}, "start_date"),
    ("community-usage-delta", {"end_date": "yesterday-ish"}, "end_date"),
    ("community-usage-delta", {"start_date": 20240101}, "start_date"),
    ("community-stats", {"start_date": "2024-02-01", "end_date": "2024-01-01"}, "after"),
    ("record-delta-category", {"date_basis": "modified"}, "date_basis"),
    ("record-delta-series", {"category": "colours"}, "colours"),
    ("usage-delta-series", {"metric": "likes"}, "likes"),
    ("record-delta-series", {"category": "global", "metric": "views"}, "views"),
    ("record-delta-category", {"optimize": "maybe"}, "optimize"),
    ("record-delta-category", {"component_names": "a,b"}, "component_names"),
    ("community-usage-delta", {"community_id": 7}, "community_id"),
    ("usage-delta-series", {"subcount_id": ["x"]}, "subcount_id"),
    ("community-record-delta-created", {"date_basis": "published"}, "created"),
    ("community-record-snapshot-published", {"date_basis": "added"}, "published"),
])
def test_invalid_requests_are_400_with_a_message(client, services, stat, params, words):
    status, result = post(client, {"x": {"stat": stat, "params": params}})
    assert status == 400, result
    assert result["status"] == 400 and words in result["message"], result


def test_unknown_stat_and_bad_envelope_are_400(client, services):
    status, result = post(client, {"x": {"stat": "community-record-delta-modified"}})
    assert status == 400 and "community-record-delta-modified" in result["message"]
    status, result = post(client, {"x": {"stat": "usage-delta-category", "extra": 1}})
    assert status == 400 and result["message"]


# --- permissions ---------------------------------------------------------------------

def test_restricted_community_is_404_for_outsiders_and_readable_by_its_owner(
        app, services, communities, users):
    """No existence leak: a restricted community answers like a missing one."""
    secret = communities["secret"]
    body = lambda ident: {"x": {"stat": "community-record-delta-added",  # noqa: E731
                                "params": {"community_id": ident}}}
    missing = f"{uuid.uuid4()}"
    with app.test_client() as anon:
        for ident in (secret.id, secret.data["slug"], missing, "no-such-slug"):
            status, result = post(anon, body(ident))
            assert status == 404, (ident, result)
            assert result == {"status": 404, "message": f"Community {ident} not found"}
        assert post(anon, body(communities["alpha"].id))[0] == 200
        assert post(anon, body(GLOBAL))[0] == 200
    for name, expected in (("outsider", 404), ("owner", 200)):
        with app.test_client() as c:
            login_user_via_session(c, email=users[name].email)
            status, result = post(c, body(secret.data["slug"]))
            assert status == expected, (name, result)
            if expected == 200:
                assert result["x"] == []  # no dashboard: nothing aggregated


# --- volume ---------------------------------------------------------------------------

def test_more_than_ten_thousand_documents_are_all_returned(world, app, identities, client):
    """Gap 4: no 10,000 cap. 10,050 hand-written usage deltas, 1990-2017, one community.

    Indexed into a test-only index behind the real alias, for a community of
    its own (its dashboard is off, so no aggregation touches it).
    """
    from invenio_stats_dashboard.demo.rdm import create_community
    from invenio_search.engine import search

    owner = identities["owner"]
    slug = f"bulk-{uuid.uuid4().hex[:8]}"
    community = create_community(owner, slug, "Bulk")
    n, first = 10_050, date(1990, 1, 1)
    index = prefix_index("stats-community-usage-delta-bulktest")
    actions = ({"_index": index, "_id": f"{community.id}-{first + timedelta(days=i)}",
                "_source": {"community_id": str(community.id),
                            "period_start": f"{first + timedelta(days=i)}T00:00:00",
                            "period_end": f"{first + timedelta(days=i)}T23:59:59",
                            "totals": {"view": {"total_events": i}}}}
               for i in range(n))
    search.helpers.bulk(current_search_client, actions, chunk_size=2000)
    current_search_client.indices.refresh(index=index)
    app.config["STATS_DATA_SERIES_PAGE_SIZE"] = 365  # not 7: 10k docs in 28 pages
    app.config["STATS_DATA_SERIES_PAGE_SIZE_MAX"] = 365
    try:
        status, result = post(client, {
            "raw": {"stat": "community-usage-delta", "params": {"community_id": slug}},
            "cat": {"stat": "usage-delta-category", "params": {"community_id": slug}}})
    finally:
        app.config["STATS_DATA_SERIES_PAGE_SIZE"] = 7
    assert status == 200
    assert [d["totals"]["view"]["total_events"] for d in result["raw"]] == list(range(n))
    (views,) = result["cat"]["global"]["views"]
    assert "year" not in views  # 28 years: full dates
    assert views["data"][0] == ["1990-01-01", 0]
    assert views["data"][-1] == [str(first + timedelta(days=n - 1)), n - 1]
    assert len(views["data"]) == n
    assert result["cat"]["global"]["downloads"][0]["data"][5] == ["1990-01-06", 0]


def test_a_memory_budget_shrinks_the_page_within_its_bounds(app, monkeypatch):
    """§4.8: a page's projected memory (docs × avg bytes × multiplier × safety) stays
    within the budget; never under MIN; no budget pressure keeps the configured size."""
    from invenio_stats_dashboard.resources.queries import _page_size

    per_doc = 2048 * 4.0 * 1.2
    settings = {"STATS_DATA_SERIES_PAGE_SIZE": 365, "STATS_DATA_SERIES_PAGE_SIZE_MIN": 50,
                "STATS_DATA_SERIES_PAGE_SIZE_MAX": 365, "STATS_DATA_SERIES_AVG_DOC_BYTES": 2048,
                "STATS_DATA_SERIES_INMEMORY_MULTIPLIER": 4.0,
                "STATS_DATA_SERIES_MEM_SAFETY_FACTOR": 1.2}
    for key, value in settings.items():
        monkeypatch.setitem(app.config, key, value)
    with app.app_context():
        monkeypatch.setitem(app.config, "STATS_DATA_SERIES_MEM_BUDGET_BYTES", None)
        assert _page_size() == 365  # this machine has far more than 365 pages' worth
        monkeypatch.setitem(app.config, "STATS_DATA_SERIES_MEM_BUDGET_BYTES",
                            int(120 * per_doc) + 1)
        assert _page_size() == 120
        monkeypatch.setitem(app.config, "STATS_DATA_SERIES_MEM_BUDGET_BYTES", 1000)
        assert _page_size() == 50
        monkeypatch.setitem(app.config, "STATS_DATA_SERIES_MEM_BUDGET_BYTES", None)
        monkeypatch.setitem(app.config, "STATS_DATA_SERIES_MEM_HIGH_WATER_PERCENT", 0.0001)
        assert _page_size() == 50  # RSS is over 0.01 % of RAM already


def test_optimisation_prunes_registry_metrics_only(world, app, client):
    """§4.7: listed subcounts keep the metrics of the given components; others keep all."""
    from invenio_stats_dashboard.resources.queries import compute_category

    a = world["a"]
    registry = {"usage_deltas": {"global": {"views": ["Chart"], "downloads": ["Table"]},
                                 "access_statuses": {"view_visitors": ["Chart"]}}}
    old = app.config.get("STATS_DASHBOARD_COMPONENT_METRICS_REGISTRY")
    app.config["STATS_DASHBOARD_COMPONENT_METRICS_REGISTRY"] = registry
    try:
        pruned = compute_category("usage-delta-category", a, FIRST, LAST,
                                  component_names=["Chart"])
        status, result = post(client, {
            "opt": {"stat": "usage-delta-category", "params": {
                "community_id": a, "optimize": True, "component_names": ["Chart"]}},
            "all": {"stat": "usage-delta-category", "params": {"community_id": a}}})
    finally:
        app.config["STATS_DASHBOARD_COMPONENT_METRICS_REGISTRY"] = old
    assert status == 200
    assert list(pruned["global"]) == ["views"]
    assert list(pruned["accessStatuses"]) == ["viewVisitors"]
    assert len(pruned["languages"]) == 10
    assert pruned["global"]["views"] == result["all"]["global"]["views"] != []
    assert set(result["opt"]["global"]) == {"views"}
    assert len(result["all"]["global"]) == 10
