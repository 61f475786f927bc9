# Part of invenio-stats-dashboard (MIT License).
"""``POST /api/stats-dashboard`` over HTTP, with real users, on the real services.

What upstream got wrong and this module pins down (api-and-cache §9 gaps
1–3, 6–9): every malformed request gets its real 4xx with a JSON
``{"status", "message"}`` and writes nothing to the response cache;
restricted communities are invisible (404) to anonymous users and
non-members on cached and uncached paths alike; every parameter is honoured
(multi-year ranges, clipping, ``date_basis``, ``category``/``metric``);
exports of a two-year range round-trip to the JSON numbers; the numbers
equal a hand computation from the history (``api_world.EXPECTED``).
"""

import pytest
import orjson
from invenio_accounts.testutils import login_user_via_session

from api_world import EXPECTED, YEAR, day, drive, is_delta
from conftest import RUN_PREFIX

URL = "/stats-dashboard"
CATEGORY_QUERIES = ("record-delta-category", "record-snapshot-category",
                    "usage-delta-category", "usage-snapshot-category")
CACHE_PREFIX = f"{RUN_PREFIX}cache"
Y1, Y2 = YEAR, YEAR + 1


@pytest.fixture(scope="module")
def app_config(app_config):
    """Dashboards on for everyone; a cache prefix of this run's own."""
    app_config.update(STATS_DASHBOARD_ENABLED_GLOBAL=True,
                      STATS_DASHBOARD_ENABLED_COMMUNITY=True,
                      STATS_DASHBOARD_COMMUNITY_OPT_IN=False,
                      STATS_CACHE_PREFIX=CACHE_PREFIX)
    return app_config


@pytest.fixture(scope="module")
def world(services, users, identities, communities):
    """The history, a member of the restricted community and a superuser."""
    from invenio_access.models import ActionUsers
    from invenio_access.permissions import superuser_access, system_identity
    from invenio_communities.proxies import current_communities
    from invenio_db import db

    from invenio_stats_dashboard.demo.rdm import create_user

    driver, events = drive(identities, communities)
    secret = communities["secret"].id
    member = create_user("member@example.org")
    current_communities.service.members.add(system_identity, secret, data={
        "members": [{"type": "user", "id": str(member.id)}], "role": "reader"})
    admin = create_user("admin@example.org")
    db.session.add(ActionUsers.allow(superuser_access, user=admin))
    db.session.commit()
    assert services.url_map.bind("").match(URL, method="POST")
    return {"driver": driver, "events": events, "users": {**users, "member": member, "admin": admin},
            "ids": {n: c.id for n, c in communities.items()},
            "slugs": {n: c.data["slug"] for n, c in communities.items()}}


class Client:
    """A test client of the API app that sends the CSRF cookie and header as the
    dashboard does (the API app enforces CSRF for session-authenticated POSTs)."""

    def __init__(self, app, user=None):
        from invenio_rest.csrf import _get_new_csrf_token

        self.client = app.test_client()
        with app.test_request_context():
            self.token = _get_new_csrf_token()
        self.client.set_cookie("csrftoken", self.token)
        if user is not None:
            login_user_via_session(self.client, user=user)

    def post(self, url, data, headers):
        return self.client.post(url, data=data, headers={"X-CSRFToken": self.token, **headers})


def client_for(app, world, who):
    """A client logged in as ``who`` (None: anonymous)."""
    return Client(app, world["users"][who] if who is not None else None)


def post(client, body, accept=None, content_type="application/json"):
    raw = body if isinstance(body, (bytes, str)) else orjson.dumps(body)
    headers = {"Content-Type": content_type} if content_type else {}
    if accept:
        headers["Accept"] = accept
    return client.post(URL, data=raw, headers=headers)


def body_for(community, start, end, queries=CATEGORY_QUERIES, **params):
    return {q: {"stat": q, "params": {"community_id": community, "start_date": start,
                                      "end_date": end, **params}} for q in queries}


def cache_state():
    """Every key of this run's cache prefix (entries, index, counters, locks) with its value."""
    from invenio_stats_dashboard.services.response_cache import cache_client

    client = cache_client()
    state = {}
    for pattern in (f"{CACHE_PREFIX}:*", f"lock:{CACHE_PREFIX}:*"):
        for key in client.scan_iter(match=pattern, count=1000):
            kind = client.type(key)
            value = {b"hash": client.hgetall, b"set": client.smembers,
                     b"string": client.get}.get(kind, lambda k: kind)(key)
            state[key] = value
    return state


def entries(community_id=None):
    from invenio_stats_dashboard.services.response_cache import ResponseCache

    return ResponseCache().entries(community_id)


def points(series_set, subcount, metric, series_id):
    """``{YYYY-MM-DD: value}`` of one series (``MM-DD`` points expanded with ``year``)."""
    for series in series_set.get(subcount, {}).get(metric, []):
        if series["id"] == series_id:
            year = series.get("year")
            return {(f"{year}-{d}" if year and len(d) == 5 else d): v
                    for d, v in series["data"]}
    return None


# --- malformed requests ---------------------------------------------------------------

def _q(params=None, name="usage-delta-category", **extra):
    return {name: {"stat": name, "params": params or {}, **extra}}


def _beta(**params):
    return _q({"community_id": "@beta", "start_date": f"{Y1}-01-01",
               "end_date": f"{Y1}-12-31", **params})


#: (case, body, headers, status, message fragment). ``@beta`` is replaced by beta's
#: slug: beta is asked for only here, so a partial write would show in its entries.
MALFORMED = [
    ("empty body", b"", {}, 400, "No JSON data provided"),
    ("blank body", b"  \n", {}, 400, "No JSON data provided"),
    ("empty object", {}, {}, 400, "No JSON data provided"),
    ("truncated JSON", b'{"usage-delta-category": {', {}, 400, "not valid JSON"),
    ("JSON array", [1, 2], {}, 400, "must be a JSON object"),
    ("JSON string", "\"usage-delta-category\"", {}, 400, "must be a JSON object"),
    ("JSON null", b"null", {}, 400, "must be a JSON object"),
    ("text/plain body", _beta(), {"Content-Type": "text/plain"}, 400, "must be JSON"),
    ("form body", b"a=b", {"Content-Type": "application/x-www-form-urlencoded"}, 400,
     "must be JSON"),
    ("unknown query", _q(name="usage-deltas"), {}, 400, "Unknown query: usage-deltas"),
    ("raw query name", _q(name="community-usage-delta"), {}, 400,
     "Unknown query: community-usage-delta"),
    ("entry not an object", {"usage-delta-category": 5}, {}, 400, "must be an object"),
    ("extra entry key", _q(page=2), {}, 400, "Unknown key in query"),
    ("stat mismatch", {"usage-delta-category": {"stat": "record-delta-category"}}, {},
     400, "\"stat\" must be"),
    ("params a list", {"usage-delta-category": {"params": ["global"]}}, {}, 400,
     "Parameters of query usage-delta-category must be an object"),
    ("unknown param", _beta(subcount_id="x"), {}, 400, "Unknown parameter"),
    ("unknown param 2", _beta(component_names=["a"]), {}, 400, "Unknown parameter"),
    ("community_id a number", _beta(community_id=5), {}, 400, "community_id"),
    ("community_id empty", _beta(community_id=""), {}, 400, "community_id"),
    ("unknown community slug", _beta(community_id="no-such-community"), {}, 404,
     "not found"),
    ("unknown community uuid", _beta(community_id="9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"),
     {}, 404, "not found"),
    ("month 13", _beta(start_date=f"{Y1}-13-01"), {}, 400, "not a valid date"),
    ("Feb 30", _beta(end_date=f"{Y1}-02-30"), {}, 400, "not a valid date"),
    ("word date", _beta(start_date="yesterday"), {}, 400, "must be a date YYYY-MM-DD"),
    ("date a number", _beta(start_date=20250101), {}, 400, "must be a date YYYY-MM-DD"),
    ("datetime", _beta(start_date=f"{Y1}-01-01T00:00:00"), {}, 400, "YYYY-MM-DD"),
    ("inverted range", _beta(start_date=f"{Y1}-06-02", end_date=f"{Y1}-06-01"), {}, 400,
     "is after end_date"),
    ("huge range", _beta(start_date="2000-01-01", end_date=f"{Y2}-12-31"), {}, 400,
     "at most"),
    ("before the history", _beta(start_date="1990-01-01", end_date="1990-12-31"), {}, 400,
     "before"),
    ("future year", _beta(start_date=f"{Y2 + 1}-01-01", end_date=f"{Y2 + 1}-12-31"), {},
     400, "after the current year"),
    ("unknown date_basis", _beta(date_basis="modified"), {}, 400, "unknown date_basis"),
    ("date_basis a number", _beta(date_basis=1), {}, 400, "unknown date_basis"),
    ("unknown category", _beta(category="colours"), {}, 400, "unknown category"),
    ("category a number", _beta(category=3), {}, 400, "category"),
    ("unknown metric", _beta(metric="likes"), {}, 400, "unknown metric"),
    ("record metric on usage", _beta(metric="uploaders"), {}, 400, "unknown metric"),
    ("optimize a string", _beta(optimize="yes"), {}, 400, "optimize"),
    ("valid then unknown query", {**_beta(), "nope-category": {}}, {}, 400,
     "Unknown query: nope-category"),
    ("valid then bad param", {**_beta(), **_q({"community_id": "@beta", "colour": 1},
                                               name="record-delta-category")}, {}, 400,
     "Unknown parameter"),
    ("Accept text/html", _beta(), {"Accept": "text/html"}, 406, "Not acceptable"),
    ("Accept image/png", _beta(), {"Accept": "image/png"}, 406, "Not acceptable"),
    ("Accept json q=0", _beta(), {"Accept": "application/json;q=0"}, 406,
     "Not acceptable"),
]


def _fill(value, slug):
    if isinstance(value, dict):
        return {k: _fill(v, slug) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, slug) for v in value]
    return slug if value == "@beta" else value


@pytest.mark.parametrize("case,body,headers,status,fragment", MALFORMED,
                         ids=[c[0] for c in MALFORMED])
def test_malformed_request(services, world, case, body, headers, status, fragment):
    """Documented status, JSON message, and the cache exactly as before."""
    client = client_for(services, world, "owner")
    before = cache_state()
    body = _fill(body, world["slugs"]["beta"])
    raw = body if isinstance(body, (bytes, str)) else orjson.dumps(body)
    headers = {"Content-Type": "application/json", **headers}
    response = client.post(URL, data=raw, headers=headers)
    assert response.status_code == status, (case, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    payload = response.get_json()
    assert set(payload) == {"status", "message"} and payload["status"] == status
    assert fragment in payload["message"], payload["message"]
    assert cache_state() == before
    assert entries(world["ids"]["beta"]) == []


def test_malformed_cases_are_many():
    assert len(MALFORMED) >= 30


def test_beta_is_cacheable_when_well_formed(services, world):
    """The malformed cases' beta request, well formed, does compute (and may store):
    so ``entries(beta) == []`` above is a real check, not a vacuous one."""
    client = client_for(services, world, "owner")
    beta = world["slugs"]["beta"]
    response = post(client, body_for(beta, f"{Y1}-01-01", f"{Y1}-12-31",
                                     queries=("record-delta-category",)))
    assert response.status_code == 200
    from invenio_stats_dashboard.services.response_cache import ResponseCache

    cache = ResponseCache()
    key = cache.key(world["ids"]["beta"], Y1, "record-delta-category", "added")
    assert cache.read(key) is not None  # Y1 is complete: stored
    cache.invalidate(world["ids"]["beta"], [Y1])
    assert entries(world["ids"]["beta"]) == []


def test_unexpected_failure_is_a_json_500_and_stores_nothing(services, world, monkeypatch):
    """A computation that fails (here: made to fail) → 500 JSON, no internals, no entry."""
    from invenio_stats_dashboard.services import cache_generation

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(cache_generation, "default_compute", broken)
    client = client_for(services, world, "owner")
    before = cache_state()
    response = post(client, body_for(world["slugs"]["beta"], f"{Y1}-01-01", f"{Y1}-12-31",
                                     queries=("usage-delta-category",)))
    assert response.status_code == 500
    assert response.get_json()["status"] == 500
    assert "secret internals" not in response.get_data(as_text=True)
    assert entries(world["ids"]["beta"]) == []
    after = cache_state()  # only the miss counter moved
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed <= {f"{CACHE_PREFIX}:stats".encode()}, changed


# --- numbers ---------------------------------------------------------------------------

TWO_YEARS = (f"{Y1}-12-01", f"{Y2}-01-31")


def dashboard(services, world, community, start, end, who="owner", queries=CATEGORY_QUERIES,
              accept=None, **params):
    client = client_for(services, world, who)
    response = post(client, body_for(community, start, end, queries, **params), accept=accept)
    return response


def stats_api(services, community, start, end, queries=CATEGORY_QUERIES, **params):
    """The uncached ``/api/stats`` answer for the same range (served at ``/stats``)."""
    client = services.test_client()
    response = client.post("/stats", data=orjson.dumps(body_for(community, start, end,
                                                                 queries, **params)),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


@pytest.mark.parametrize("who", ["alpha", "global"])
def test_numbers_equal_the_hand_computation(services, world, who):
    """Two-year range: the history's numbers, written down by hand (``EXPECTED``)."""
    community = world["slugs"]["alpha"] if who == "alpha" else "global"
    response = dashboard(services, world, community, *TWO_YEARS)
    assert response.status_code == 200, response.get_data(as_text=True)
    result = response.get_json()
    assert set(result) == set(CATEGORY_QUERIES)
    for (query, sub, metric, sid), wanted in EXPECTED[who].items():
        got = points(result[query], sub, metric, sid)
        assert got is not None, (query, sub, metric)
        first = min(wanted)
        if is_delta(query):
            assert {d: v for d, v in got.items() if v} == wanted, (query, metric, got)
        else:
            assert {d: v for d, v in got.items() if d >= first} == wanted, (query, metric, got)
            assert all(v == 0 for d, v in got.items() if d < first), (query, metric, got)
        assert all(TWO_YEARS[0] <= d <= TWO_YEARS[1] for d in got)
    series = result["record-snapshot-category"]["global"]["records"][0]
    assert "year" not in series  # spans both years: full dates (§4.3)
    assert series["data"][0][0] == day(0).isoformat()


@pytest.mark.parametrize("basis", ["added", "created", "published"])
def test_numbers_equal_the_oracle_and_the_uncached_query(services, world, basis):
    """Every series of the four categories (alpha, global) over both years and a slice
    across the New Year: equal to spec §4 applied to the aggregation oracle's documents
    (``api_oracle``), and to the uncached ``/api/stats`` category query."""
    from agg_oracle import GLOBAL, Oracle
    from agg_run import read_all
    from api_oracle import expected_category, normalise, order_of

    from invenio_stats_dashboard.resources.categories import CATEGORIES
    from invenio_stats_dashboard.resources.queries import compute_category

    oracle = Oracle(world["driver"].records(), world["driver"].history, world["events"])
    stored = read_all()
    for community in (world["ids"]["alpha"], GLOBAL):
        ident = world["slugs"]["alpha"] if community != GLOBAL else GLOBAL
        for start, end in (TWO_YEARS, (day(2).isoformat(), day(4).isoformat())):
            response = dashboard(services, world, ident, start, end, date_basis=basis)
            assert response.status_code == 200, response.get_data(as_text=True)
            result = response.get_json()
            uncached = stats_api(services, ident, start, end, date_basis=basis)
            # /api/stats serialises with sorted keys: key order from the query layer itself
            assert {q: order_of(r) for q, r in result.items()} == \
                {q: order_of(compute_category(q, community, start, end, basis))
                 for q in CATEGORY_QUERIES}
            assert {q: normalise(r) for q, r in result.items()} == \
                {q: normalise(r) for q, r in uncached.items()}  # series order may differ
            for query in CATEGORY_QUERIES:
                category = CATEGORIES[query]
                series = (f"community-records-{category.kind}-{basis}-agg"
                          if category.family == "records"
                          else f"community-usage-{category.kind}-agg")
                days = sorted(d for c, d in stored[series]
                              if c == community and start <= d.isoformat() <= end)
                assert days, (query, community)
                docs = [oracle.expected(series, community, d) for d in days]
                assert normalise(result[query]) == expected_category(query, docs), \
                    (query, community, basis, start)


def test_one_year_is_the_cached_block_and_a_slice_is_cut(services, world):
    """A full calendar year is the cached block byte for byte (second request: a hit);
    a slice of it keeps ``year`` + ``MM-DD`` and only its days."""
    from invenio_stats_dashboard.services.response_cache import ResponseCache

    cache = ResponseCache()
    alpha = world["slugs"]["alpha"]
    first = dashboard(services, world, alpha, f"{Y1}-01-01", f"{Y1}-12-31")
    hits = cache.counters()["hits"]
    second = dashboard(services, world, alpha, f"{Y1}-01-01", f"{Y1}-12-31")
    assert first.status_code == second.status_code == 200
    assert second.data == first.data
    assert cache.counters()["hits"] == hits + len(CATEGORY_QUERIES)
    for query in CATEGORY_QUERIES:
        key = cache.key(world["ids"]["alpha"], Y1, query, "added")
        assert orjson.loads(cache.read(key)) == first.get_json()[query]
    sliced = dashboard(services, world, alpha, f"{Y1}-12-30", f"{Y1}-12-30").get_json()
    series = sliced["record-snapshot-category"]["global"]["records"][0]
    assert series["year"] == Y1 and series["data"] == [["12-30", 2]]
    assert sliced["usage-delta-category"]["global"]["views"][0]["data"] == [["12-30", 2]]


def test_category_and_metric_restrict_the_set(services, world):
    alpha = world["slugs"]["alpha"]
    full = dashboard(services, world, alpha, *TWO_YEARS).get_json()
    one = dashboard(services, world, alpha, *TWO_YEARS, queries=("usage-delta-category",),
                    category="resource_types").get_json()
    assert one == {"usage-delta-category": {
        "resourceTypes": full["usage-delta-category"]["resourceTypes"]}}
    views = dashboard(services, world, alpha, *TWO_YEARS, queries=("usage-delta-category",),
                      metric="views").get_json()["usage-delta-category"]
    assert set(views) == set(full["usage-delta-category"])
    assert all(list(metrics) == ["views"] for metrics in views.values())
    assert views["global"]["views"] == full["usage-delta-category"]["global"]["views"]
    both = dashboard(services, world, alpha, *TWO_YEARS, queries=("record-delta-category",),
                     category="global", metric="uploaders").get_json()
    assert both == {"record-delta-category": {"global": {
        "uploaders": full["record-delta-category"]["global"]["uploaders"]}}}


def test_optimize_selects_the_metric_set_and_its_own_entry(services, world, monkeypatch):
    """``optimize`` prunes by the layout's components (§4.7); the two sets are cached
    under different keys, so neither is served for the other (gap 12)."""
    from invenio_stats_dashboard.services.response_cache import ResponseCache

    registry = {"usage_deltas": {"global": {"views": ["SingleStatViews"],
                                            "downloads": ["NoSuchComponent"]}}}
    monkeypatch.setitem(services.config, "STATS_DASHBOARD_COMPONENT_METRICS_REGISTRY",
                        registry)
    ResponseCache().clear_all()  # the registry is part of the key version
    alpha, year = world["slugs"]["alpha"], (f"{Y1}-01-01", f"{Y1}-12-31")
    q = ("usage-delta-category",)
    pruned = dashboard(services, world, alpha, *year, queries=q, optimize=True).get_json()
    full = dashboard(services, world, alpha, *year, queries=q, optimize=False).get_json()
    assert "views" in pruned[q[0]]["global"] and "downloads" not in pruned[q[0]]["global"]
    assert "downloads" in full[q[0]]["global"]
    again = dashboard(services, world, alpha, *year, queries=q, optimize=True).get_json()
    assert again == pruned
    flags = {e["optimize"] for e in entries(world["ids"]["alpha"])
             if e["category"] == q[0] and e["year"] == Y1}
    assert flags == {True, False}
    ResponseCache().clear_all()


def _set_own_layout(community_id, layout):
    from invenio_communities.communities.records.api import Community
    from invenio_db import db

    record = Community.get_record(community_id)
    fields = record.setdefault("custom_fields", {})
    if layout is None:
        fields.pop("stats:dashboard_layout", None)
    else:
        fields["stats:dashboard_layout"] = layout
    record.commit()
    db.session.commit()


def test_a_communitys_own_layout_change_is_never_served_stale(services, world, monkeypatch):
    """With pruning on, an entry depends on the components of the layout it was pruned
    for; a community's own layout (custom field) is not in the config version, so a
    change must give other keys: the old layout's shape is not served, and cleanup
    removes the old entries."""
    from invenio_stats_dashboard.services.cache_generation import cleanup_entries
    from invenio_stats_dashboard.services.response_cache import ResponseCache

    registry = {"usage_deltas": {"global": {"views": ["SingleStatViews"],
                                            "downloads": ["OwnDownloads"]}}}
    monkeypatch.setitem(services.config, "STATS_DASHBOARD_COMPONENT_METRICS_REGISTRY",
                        registry)
    cache = ResponseCache()
    cache.clear_all()
    alpha, year = world["slugs"]["alpha"], (f"{Y1}-01-01", f"{Y1}-12-31")
    q = ("usage-delta-category",)
    before = dashboard(services, world, alpha, *year, queries=q, optimize=True).get_json()
    assert set(before[q[0]]["global"]) >= {"views"} and "downloads" not in before[q[0]]["global"]
    own = {"tabs": [{"rows": [{"components": [{"component": "OwnDownloads"}]}]}]}
    _set_own_layout(world["ids"]["alpha"], own)
    try:
        after = dashboard(services, world, alpha, *year, queries=q, optimize=True).get_json()
        assert "downloads" in after[q[0]]["global"] and "views" not in after[q[0]]["global"]
        mine = [e for e in entries(world["ids"]["alpha"]) if e["category"] == q[0]]
        assert len(mine) == 2 and ["OwnDownloads"] in [e["components"] for e in mine]
        with services.app_context():
            removed = cleanup_entries(cache, {world["ids"]["alpha"]: [Y1]})
        assert removed >= 1
        left = [e for e in entries(world["ids"]["alpha"]) if e["category"] == q[0]]
        assert [e["components"] for e in left] == [["OwnDownloads"]]
    finally:
        _set_own_layout(world["ids"]["alpha"], None)
        cache.clear_all()


# --- permissions -----------------------------------------------------------------------

def _secret_request(services, world, who, ident):
    return dashboard(services, world, ident, f"{Y1}-01-01", f"{Y2}-01-31", who=who)


def test_restricted_community_never_leaks(services, world):
    """Anonymous and non-members get the 404 of a missing community (same body shape,
    nothing computed), before and after members filled the cache; members and the
    administrator read the same numbers; global is public."""
    from invenio_stats_dashboard.services.response_cache import ResponseCache

    secret_id, slug = world["ids"]["secret"], world["slugs"]["secret"]
    ResponseCache().invalidate(secret_id, [Y1, Y2])
    assert entries(secret_id) == []
    missing = _secret_request(services, world, None, "no-such-community").get_json()

    def refused(who):
        for ident in (slug, secret_id):
            response = _secret_request(services, world, who, ident)
            assert response.status_code == 404, (who, ident, response.get_data(as_text=True))
            payload = response.get_json()
            assert payload == {"status": 404, "message": missing["message"].replace(
                "no-such-community", ident)}, (who, payload)
            assert "views" not in response.get_data(as_text=True)

    for who in (None, "outsider"):  # uncached path
        refused(who)
    assert entries(secret_id) == []  # a refused request computes nothing

    member = _secret_request(services, world, "member", slug)
    assert member.status_code == 200, member.get_data(as_text=True)
    numbers = member.get_json()
    views = points(numbers["usage-delta-category"], "global", "views", "global")
    assert {d: v for d, v in views.items() if v} == {day(2).isoformat(): 1}  # s1's view
    assert entries(secret_id)  # Y1 is complete: cached now

    for who in (None, "outsider"):  # cached path
        refused(who)
    for who in ("admin", "owner"):
        for ident in (slug, secret_id):
            response = _secret_request(services, world, who, ident)
            assert response.status_code == 200, (who, response.get_data(as_text=True))
            assert response.get_json() == numbers

    anonymous_global = dashboard(services, world, "global", *TWO_YEARS, who=None)
    assert anonymous_global.status_code == 200
    assert anonymous_global.get_json() == dashboard(services, world, "global",
                                                    *TWO_YEARS).get_json()


# --- exports ---------------------------------------------------------------------------

EXPORTS = ["application/json+gzip", "application/json+br", "text/csv",
           "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "application/xml"]


def test_two_year_exports_round_trip(services, world):
    """Every export of a two-year range parses back to the JSON answer's numbers, with
    full dates; archives are ``application/gzip`` without ``Content-Encoding`` (gap 7);
    the XML validates against the shipped XSD (gap 9)."""
    from pathlib import Path

    from api_roundtrip import expected_points, parse_back
    from lxml import etree

    import invenio_stats_dashboard.resources.serializers as serializers

    alpha = world["slugs"]["alpha"]
    plain = dashboard(services, world, alpha, *TWO_YEARS, accept="application/json")
    assert plain.status_code == 200 and plain.mimetype == "application/json"
    wanted = expected_points(plain.get_json())
    days = {d for q in wanted.values() for s in q.values() for m in s.values()
            for series in m.values() for d in series}
    assert {d[:4] for d in days} == {str(Y1), str(Y2)}  # both years are in the export
    schema = etree.XMLSchema(etree.parse(str(Path(serializers.__file__).parent
                                             / "data-series.xsd")))
    for mimetype in EXPORTS:
        response = dashboard(services, world, alpha, *TWO_YEARS,
                             accept=f"text/html;q=0.5, {mimetype}")
        assert response.status_code == 200, (mimetype, response.get_data(as_text=True))
        assert "Content-Encoding" not in response.headers, mimetype
        assert "attachment" in response.headers.get("Content-Disposition", ""), mimetype
        assert parse_back(response.data, mimetype) == wanted, mimetype
        if mimetype == "application/xml":
            schema.assertValid(etree.fromstring(response.data))
    assert dashboard(services, world, alpha, *TWO_YEARS, accept="*/*").data == plain.data


class RefuseStatistics:
    """A policy an instance might configure: communities' statistics for nobody."""

    def can_read_stats(self, identity, community):
        return False


def test_a_refusing_policy_is_a_403(services, world, monkeypatch):
    """``COMMUNITY_STATS_PERMISSION_POLICY`` (import string) refuses a readable
    community: 403 JSON, computed nothing; global stays public."""
    monkeypatch.setitem(services.config, "COMMUNITY_STATS_PERMISSION_POLICY",
                        f"{__name__}:RefuseStatistics")
    before = cache_state()
    response = dashboard(services, world, world["slugs"]["alpha"], *TWO_YEARS, who="outsider")
    assert response.status_code == 403, response.get_data(as_text=True)
    payload = response.get_json()
    assert set(payload) == {"status", "message"} and payload["status"] == 403
    assert cache_state() == before
    assert dashboard(services, world, "global", *TWO_YEARS, who=None).status_code == 200


def test_a_deleted_community_is_not_found(services, world, identities):
    """A deleted community answers like a missing one on both endpoints, for its owner
    and the administrator too (the communities service shows them a tombstone only)."""
    from invenio_access.permissions import system_identity
    from invenio_communities.proxies import current_communities

    from invenio_stats_dashboard.demo.rdm import create_community

    slug = f"{RUN_PREFIX.rstrip('-')}-gone"
    community = create_community(identities["owner"], slug, "Gone")
    alive = dashboard(services, world, slug, f"{Y1}-01-01", f"{Y1}-12-31")
    assert alive.status_code == 200, alive.get_data(as_text=True)  # readable before
    current_communities.service.delete(system_identity, community.id, data={
        "removal_reason": {"id": "spam"}, "is_visible": False})
    for who in ("owner", "admin", None):
        for ident in (slug, str(community.id)):
            response = dashboard(services, world, ident, f"{Y1}-01-01", f"{Y1}-12-31", who=who)
            assert response.status_code == 404, (who, response.get_data(as_text=True))
            assert response.get_json() == {"status": 404,
                                           "message": f"Community {ident} not found"}
    raw = services.test_client().post("/stats", data=orjson.dumps(
        {"r": {"stat": "usage-delta-category", "params": {"community_id": slug}}}),
        headers={"Content-Type": "application/json"})
    assert raw.status_code == 404, raw.get_data(as_text=True)


def test_a_disabled_dashboard_answers_as_configured(services, world, monkeypatch):
    """``COMMUNITY_STATS_API_DISABLED_DASHBOARD``: "serve" answers for any readable
    community; "forbid" gives 403 (JSON) for one whose dashboard is not enabled, and
    still serves enabled ones and ``global``."""
    from invenio_stats_dashboard.demo.rdm import create_community, make_identity

    monkeypatch.setitem(services.config, "STATS_DASHBOARD_COMMUNITY_OPT_IN", True)
    slug = f"{RUN_PREFIX.rstrip('-')}-dark"  # created under opt-in: switch off
    create_community(make_identity(world["users"]["owner"]), slug, "Dark")
    year = (f"{Y1}-01-01", f"{Y1}-12-31")
    assert dashboard(services, world, slug, *year).status_code == 200  # "serve"
    monkeypatch.setitem(services.config, "COMMUNITY_STATS_API_DISABLED_DASHBOARD", "forbid")
    response = dashboard(services, world, slug, *year)
    assert response.status_code == 403, response.get_data(as_text=True)
    assert response.get_json() == {
        "status": 403, "message": f"Statistics are not enabled for community {slug}"}
    assert dashboard(services, world, world["slugs"]["alpha"], *year).status_code == 200
    assert dashboard(services, world, "global", *year).status_code == 200
    monkeypatch.setitem(services.config, "STATS_DASHBOARD_ENABLED_COMMUNITY", False)
    assert dashboard(services, world, world["slugs"]["alpha"], *year).status_code == 403
