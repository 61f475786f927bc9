# Part of invenio-stats-dashboard (MIT License).
"""``POST /api/stats-dashboard``: the cached year-block endpoint (spec §3, §7).

Upstream answered every failure with HTTP 200 and ``{"error": …}``, served
anyone every community, and looked only at the query name, ``community_id``
and the year of ``start_date`` (api-and-cache §9 gaps 1–3). Here:

* the whole request is validated **before** anything is read or computed, so a
  malformed request never writes to the response cache; every failure is a
  JSON ``{"status": <code>, "message": <text>}`` with that real status;
* the community is resolved with the **caller's** identity
  (``resources.permissions.resolve_community``): a community the caller may
  not read answers 404 exactly like one that does not exist;
* every parameter is honoured: the range is served year block by year block
  through the response cache and cut/joined to [start_date, end_date]
  (``series_blocks``: the same answer as the uncached ``/api/stats`` query), ``date_basis`` selects the cached basis, ``category``
  and ``metric`` restrict the series set, ``optimize`` picks the metric set;
* the ``Accept`` header is negotiated properly (``resources.serializers``):
  compressed JSON, CSV/XLSX archives and XML are reachable, no match → 406.

Errors are the documented ones; anything unexpected is logged and answered
500 without internals.
"""

import re
from dataclasses import dataclass
from datetime import date

import orjson
from flask import Response, current_app, g, request

from ..exceptions import CommunityNotFound, InvalidStatsRequest, StatsPermissionDenied
from ..resources.categories import camel
from .series_blocks import merge_blocks, restrict

#: The queries this endpoint serves: the four series sets the dashboard reads,
#: each cached per (community, year, date basis). Raw, composite and single
#: series queries stay on ``/api/stats`` (uncached, invenio-stats envelope).
DASHBOARD_QUERIES = (
    "record-delta-category",
    "record-snapshot-category",
    "usage-delta-category",
    "usage-snapshot-category",
)
ALLOWED_PARAMS = ("community_id", "start_date", "end_date", "category", "metric",
                  "date_basis", "optimize")
DATE_BASES = ("added", "created", "published")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
JSON = "application/json"


class ApiError(Exception):
    """A request the endpoint refuses: carries the HTTP status and the message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class DashboardQuery:
    """One validated entry of the request body."""

    name: str
    community_id: str  # "global" or a community UUID (resolved for the caller)
    start: date
    end: date
    date_basis: str
    category: str | None
    metric: str | None
    optimize: bool | None
    requested_community: str = "global"  # as the caller wrote it (export file names)
    custom_fields: dict | None = None  # the community's, read by the permission check


# --- validation ------------------------------------------------------------------


def _read_body():
    """The JSON object of the request, or ``ApiError(400)`` saying what is wrong."""
    raw = request.get_data(cache=True)
    if not raw or not raw.strip():
        raise ApiError(400, "No JSON data provided")
    if request.mimetype != JSON:
        raise ApiError(400, "The request body must be JSON (Content-Type: application/json), "
                            f"got {request.mimetype or 'no Content-Type'}")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, f"The request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object keyed by query name")
    if not body:
        raise ApiError(400, "No JSON data provided")
    return body


def _parse_date(name, value, query):
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ApiError(400, f"Parameter {name} of query {query} must be a date YYYY-MM-DD, "
                            f"got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"Parameter {name} of query {query} is not a valid date: "
                            f"{value!r}") from None


def max_history_years(community_id):
    """How many calendar years back (this one included) a request may reach.

    ``maxHistoryYears`` (spec §4.9) caps how far back the dashboard goes; a
    range reaching further, or into a future year, would make one request
    compute that many year blocks of nothing (and the cache holds no such
    years), so it is refused (400) instead.
    """
    ui = current_app.config.get("STATS_DASHBOARD_UI_CONFIG", {})
    kind = "global" if community_id == "global" else "community"
    return int(ui.get(kind, {}).get("maxHistoryYears", 10) or 10)


def _string_param(name, value, query):
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"Parameter {name} of query {query} must be a non-empty string, "
                            f"got {value!r}")
    return value


def _known_keys(query):
    """``(subcount keys, metric keys)`` the query's series set may contain (camelCase).

    From the category tables and ``COMMUNITY_STATS_SUBCOUNTS`` — the same
    rule the transformer lays out its keys by — so validation happens before
    anything is computed or cached.
    """
    from ..resources.categories import CATEGORIES, camel

    category = CATEGORIES[query]
    keys = ["global"] + [out for out, _, _ in category.subcounts(
        current_app.config.get("COMMUNITY_STATS_SUBCOUNTS"))]
    if category.file_presence:
        keys.append("file_presence")
    return {camel(k) for k in keys}, {camel(m.key) for m in category.metrics}


def parse_query(name, entry):
    """One body entry → a :class:`DashboardQuery` (community not yet resolved)."""
    if name not in DASHBOARD_QUERIES:
        hint = (" (served by /api/stats)" if name in current_app.config.get(
            "COMMUNITY_STATS_QUERIES", {}) else "")
        raise ApiError(400, f"Unknown query: {name}{hint}")
    if not isinstance(entry, dict):
        raise ApiError(400, f"Query {name} must be an object {{\"stat\", \"params\"}}")
    extra = sorted(set(entry) - {"stat", "params"})
    if extra:
        raise ApiError(400, f"Unknown key in query {name}: {extra[0]}")
    if "stat" in entry and entry["stat"] != name:
        raise ApiError(400, f"Query {name}: \"stat\" must be {name!r} or absent, "
                            f"got {entry['stat']!r}")
    params = entry.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ApiError(400, f"Parameters of query {name} must be an object")
    unknown = sorted(set(params) - set(ALLOWED_PARAMS))
    if unknown:
        raise ApiError(400, f"Unknown parameter in request body for query {name}: "
                            f"{unknown[0]}")

    community_id = _string_param("community_id", params.get("community_id", "global"), name)
    start = end = None
    if params.get("start_date") is not None:
        start = _parse_date("start_date", params["start_date"], name)
    if params.get("end_date") is not None:
        end = _parse_date("end_date", params["end_date"], name)
    # Missing ends: the calendar year of the other end (a lone start_date asks
    # for the rest of its year, as upstream's year-of-start_date rule); none
    # at all: the current year.
    if start is None and end is None:
        start = date(date.today().year, 1, 1)
    if start is None:
        start = date(end.year, 1, 1)
    if end is None:
        end = date(start.year, 12, 31)
    if start > end:
        raise ApiError(400, f"Query {name}: start_date {start} is after end_date {end}")
    limit = max_history_years(community_id)
    if end.year - start.year + 1 > limit:
        raise ApiError(400, f"Query {name}: the range {start}..{end} spans "
                            f"{end.year - start.year + 1} years; at most {limit} per request")
    this_year = date.today().year
    if end.year > this_year:
        raise ApiError(400, f"Query {name}: end_date {end} is after the current year")
    if start.year <= this_year - limit:
        raise ApiError(400, f"Query {name}: start_date {start} is before the history window "
                            f"({limit} years: from {this_year - limit + 1}-01-01)")

    date_basis = params.get("date_basis", "added")
    if date_basis is None:
        date_basis = "added"
    if date_basis not in DATE_BASES:
        raise ApiError(400, f"Query {name}: unknown date_basis {date_basis!r} "
                            f"(one of {', '.join(DATE_BASES)})")
    optimize = params.get("optimize")
    if optimize is not None and not isinstance(optimize, bool):
        raise ApiError(400, f"Parameter optimize of query {name} must be true or false, "
                            f"got {optimize!r}")

    category = metric = None
    if params.get("category") is not None or params.get("metric") is not None:
        subcounts, metrics = _known_keys(name)
        if params.get("category") is not None:
            category = camel(_string_param("category", params["category"], name))
            if category not in subcounts:
                raise ApiError(400, f"Query {name}: unknown category "
                                    f"{params['category']!r}")
        if params.get("metric") is not None:
            metric = camel(_string_param("metric", params["metric"], name))
            if metric not in metrics:
                raise ApiError(400, f"Query {name}: unknown metric {params['metric']!r}")
    return DashboardQuery(name, community_id, start, end, date_basis, category, metric,
                          optimize, community_id)


def resolve_for_caller(queries):
    """Community ids → ``"global"``/UUID, read with the caller's identity.

    ``CommunityNotFound`` (missing or not readable: the same answer, so a
    restricted community's existence does not leak) → 404;
    ``StatsPermissionDenied`` (visible community, statistics not allowed) → 403.
    """
    from ..resources.permissions import read_community

    resolved = {}
    for query in queries:
        key = query.community_id
        if key not in resolved:
            try:
                resolved[key] = read_community(key, g.identity)
            except CommunityNotFound:
                raise ApiError(404, f"Community {key} not found") from None
            except StatsPermissionDenied as error:
                raise ApiError(403, str(error) or
                               f"Statistics of community {key} are not available") from None
        record = resolved[key]
        query.community_id = "global" if record is None else str(record.id)
        query.custom_fields = None if record is None else (record.get("custom_fields") or {})


# --- answering ---------------------------------------------------------------------


def _config_optimize():
    return bool(current_app.config.get("STATS_DASHBOARD_OPTIMIZE_DATA_SERIES", True))


def _computer(query, year, optimize):
    """The year-block computation handed to the cache (runs only on a miss).

    The same computation as cache generation (``cache_generation``: same
    layout components for ``optimize``), so an entry stored on a miss and
    one stored by ``cache generate`` under the same key have the same content
    (upstream mixed the two, gap 12).
    """
    from ..services.cache_generation import default_compute, key_components

    def compute():  # pruned by the components the key carries (none: nothing pruned)
        names = key_components(query.community_id, optimize, query.custom_fields)
        return default_compute(query.name, query.community_id, year, query.date_basis,
                               component_names=names)

    return compute


def year_blocks(query):
    """``[(year, JSON bytes)]`` of every calendar year of the query's range.

    Blocks come from the response cache (computed and stored on a miss —
    ``ResponseCache.get_or_create``: one computation per missing entry, stored
    only as its completeness gate allows). Entries are keyed by ``optimize``
    too, so a request for the other metric set never gets this one's bytes.
    """
    from ..services.cache_generation import key_components
    from ..services.response_cache import ResponseCache

    optimize = _config_optimize() if query.optimize is None else query.optimize
    components = key_components(query.community_id, optimize, query.custom_fields)
    cache = ResponseCache()
    return [(year, cache.get_or_create(query.community_id, year, query.name,
                                       query.date_basis, _computer(query, year, optimize),
                                       optimize=optimize, components=components))
            for year in range(query.start.year, query.end.year + 1)]


def _full_year(query):
    return (query.start.year == query.end.year and (query.start.month, query.start.day) == (1, 1)
            and (query.end.month, query.end.day) == (12, 31))


def answer(query):
    """One query → JSON bytes of its series set (cached bytes as-is when possible)."""
    blocks = year_blocks(query)
    if len(blocks) == 1 and _full_year(query) and not (query.category or query.metric):
        return blocks[0][1]
    start, end = query.start.isoformat(), query.end.isoformat()
    series_set = merge_blocks([orjson.loads(raw) for _, raw in blocks], start, end)
    return orjson.dumps(restrict(series_set, query.category, query.metric))


def _json_bytes(parts):
    """``{"q1": <bytes>, …}`` without decoding the cached blocks again."""
    return b"{" + b",".join(orjson.dumps(name) + b":" + raw for name, raw in parts) + b"}"


def error_response(status, message):
    """The one error shape of the API: ``{"status", "message"}`` with that status."""
    return Response(orjson.dumps({"status": status, "message": message}), status=status,
                    mimetype=JSON)


def stats_dashboard():
    """The view: negotiate, validate everything, resolve, answer, serialize."""
    from ..resources.serializers import negotiate, serialize

    try:
        mimetype = negotiate(request.headers.get("Accept"))
        if mimetype is None:
            raise ApiError(406, "Not acceptable: supported media types are "
                                + ", ".join(_supported()))
        body = _read_body()
        queries = [parse_query(name, entry) for name, entry in body.items()]
        resolve_for_caller(queries)
        parts = [(query.name, answer(query)) for query in queries]
        if mimetype == JSON:
            return Response(_json_bytes(parts), status=200, mimetype=JSON)
        results = {name: orjson.loads(raw) for name, raw in parts}
        first = queries[0]
        options = {"start_date": min(q.start for q in queries).isoformat(),
                   "end_date": max(q.end for q in queries).isoformat()}
        if first.requested_community != "global":
            options["community"] = first.requested_community
        payload, headers = serialize(results, mimetype, **options)
        return Response(payload, status=200, headers=headers)
    except ApiError as error:
        return error_response(error.status, error.message)
    except InvalidStatsRequest as error:
        return error_response(400, str(error))
    except CommunityNotFound:
        return error_response(404, "Community not found")
    except StatsPermissionDenied as error:
        return error_response(403, str(error) or "Permission denied")
    except Exception:  # noqa: BLE001 — the caller gets a JSON 500, the log the trace
        current_app.logger.exception("stats-dashboard request failed")
        return error_response(500, "Internal server error while computing statistics")


def _supported():
    configured = current_app.config.get("COMMUNITY_STATS_SERIALIZERS") or {}
    return list(configured) or [JSON]


def register(blueprint, app):
    """Add the endpoint to the API blueprint at ``STATS_DASHBOARD_API_ROUTES``."""
    routes = app.config.get("STATS_DASHBOARD_API_ROUTES") or {}
    rule = routes.get("stats_series", "/stats-dashboard")
    blueprint.add_url_rule(rule, "stats_series", stats_dashboard, methods=["POST"])
    return blueprint
