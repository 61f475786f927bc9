# Part of invenio-stats-dashboard (MIT License).
"""Comparing stored aggregation documents with the oracle's, field by field."""

from agg_oracle import RECORD_KEYS, SERIES, USAGE_KEYS


def compare(oracle, series, community, day, found):
    """Differences between the oracle's document and ``found`` (``[(path, exp, found)]``)."""
    _alias, kind, basis = SERIES[series]
    ordered = set()
    if kind == "snapshot":  # S6: a top list is ranked
        keys = RECORD_KEYS if basis else USAGE_KEYS
        for key, how in keys.items():
            if how == "top":
                ordered |= ({f"subcounts.{key}"} if basis else
                            {f"subcounts.{key}.by_view", f"subcounts.{key}.by_download"})
    return diff(oracle.expected(series, community, day), found, ordered=ordered)


IGNORED = {"timestamp", "updated_timestamp", "_snapshot"}
MISSING = "<missing>"


def diff(expected, found, path="", ordered=()):
    """Field-by-field differences ``[(path, expected, found)]``.

    Lists of subcount items are matched by id; their order counts only for
    the paths in ``ordered`` (ranked top lists). Numbers compare by value
    (``3`` equals ``3.0``); ``timestamp``/``updated_timestamp`` and the
    engine's hidden ``_snapshot`` are not compared.
    """
    if isinstance(expected, dict):
        if not isinstance(found, dict):
            return [(path, expected, found)]
        out = []
        for key in sorted((set(expected) | set(found)) - IGNORED):
            out += diff(expected.get(key, MISSING), found.get(key, MISSING),
                        f"{path}.{key}" if path else key, ordered)
        return out
    if isinstance(expected, list) and all(isinstance(i, dict) and "id" in i for i in expected):
        if not isinstance(found, list):
            return [(path, expected, found)]
        out = []
        exp = {i["id"]: i for i in expected}
        fnd = {i.get("id"): i for i in found if isinstance(i, dict)}
        if len(fnd) != len(found):
            out.append((f"{path}[ids]", list(exp), [i.get("id") for i in found]))
        if path in ordered and set(exp) == set(fnd) and list(exp) != list(fnd):
            out.append((f"{path}[order]", list(exp), list(fnd)))
        for id_ in sorted(set(exp) | set(fnd), key=str):
            out += diff(exp.get(id_, MISSING), fnd.get(id_, MISSING), f"{path}[{id_}]", ordered)
        return out
    if _number(expected) and _number(found):
        return [] if abs(expected - found) < 1e-6 else [(path, expected, found)]
    return [] if expected == found else [(path, expected, found)]


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)
