# Part of invenio-stats-dashboard (MIT License).
"""Validation of stats request parameters (both endpoints).

Upstream passed params straight to ``run(**params)``: an unknown name was a
``TypeError`` (HTTP 500), ``date_basis`` was never checked and a bad date
surfaced as whatever the parser raised (gap 4). Here every query kind states
the names it accepts and every value is checked up front; any problem is an
``InvalidStatsRequest`` (HTTP 400, JSON message naming the field).
"""

from datetime import date, datetime

import arrow

from ..aggregations.series import BASES
from ..exceptions import InvalidStatsRequest

COMMON = ("community_id", "start_date", "end_date", "date_basis")
#: Accepted parameter names per query kind.
ALLOWED = {
    "raw": COMMON,
    "composite": COMMON,
    "series": COMMON + ("category", "metric", "subcount_id"),
    "category": COMMON + ("optimize", "component_names"),
}


def _date(name, value):
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidStatsRequest(f"{name} must be a date string (YYYY-MM-DD)")
    try:
        parsed = arrow.get(value.strip())
    except (arrow.parser.ParserError, ValueError, TypeError) as error:
        raise InvalidStatsRequest(f"{name} is not a valid date: {value!r}") from error
    return parsed.date()


def _str(name, value, default):
    if value is None:
        return default
    if not isinstance(value, str) or not value:
        raise InvalidStatsRequest(f"{name} must be a non-empty string")
    return value


def _bool(name, value):
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise InvalidStatsRequest(f"{name} must be a boolean")


def validate(kind, params):
    """Checked, normalised params of a ``kind`` query (see ``ALLOWED``).

    Dates become ``datetime.date`` (``start_date``/``end_date`` may be
    absent: open range); an inverted range is an error, an empty one is not.
    """
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidStatsRequest("params must be an object")
    unknown = sorted(set(params) - set(ALLOWED[kind]))
    if unknown:
        raise InvalidStatsRequest(f"Unknown parameter(s): {', '.join(map(str, unknown))}; "
                                  f"allowed: {', '.join(ALLOWED[kind])}")
    out = {
        "community_id": _str("community_id", params.get("community_id"), "global"),
        "start_date": _date("start_date", params.get("start_date")),
        "end_date": _date("end_date", params.get("end_date")),
        "date_basis": _str("date_basis", params.get("date_basis"), "added"),
    }
    if out["date_basis"] not in BASES:
        raise InvalidStatsRequest(f"Unknown date_basis {out['date_basis']!r}; "
                                  f"allowed: {', '.join(BASES)}")
    if out["start_date"] and out["end_date"] and out["start_date"] > out["end_date"]:
        raise InvalidStatsRequest(f"start_date {out['start_date']} is after "
                                  f"end_date {out['end_date']}")
    if kind == "series":
        out["category"] = _str("category", params.get("category"), "global")
        out["metric"] = _str("metric", params.get("metric"), "views")
        out["subcount_id"] = _str("subcount_id", params.get("subcount_id"), None)
    if kind == "category":
        out["optimize"] = _bool("optimize", params.get("optimize"))
        names = params.get("component_names")
        if names is not None and (not isinstance(names, list)
                                  or not all(isinstance(n, str) for n in names)):
            raise InvalidStatsRequest("component_names must be a list of strings")
        out["component_names"] = names
    return out


def as_date(value, name="date"):
    """``value`` (``date``, ``datetime`` or string) as a ``date``; for Python callers."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    return _date(name, value)
