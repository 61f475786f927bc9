# Part of invenio-stats-dashboard (MIT License).
"""A membership history made through the RDM services, its oracle, and readers.

Records are published into communities (and removed) at chosen instants
under time travel over the last 600 days, so a catch-up spans two calendar
years. The oracle counts the planned changes per (community, day) — not
anything the code under test computed — and is compared with what the test
family (``agg_family``) makes of the log through the engine.
"""

import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from invenio_stats_dashboard.aggregations import documents as docs
from invenio_stats_dashboard.aggregations.series import get
from invenio_stats_dashboard.demo import rdm
from invenio_stats_dashboard.services import events_log as log
from invenio_stats_dashboard.utils.jobs import redis_client

import agg_family
from agg_common import STAMPS, instant, series_hits, travel, without

DAY = timedelta(days=1)
TODAY = datetime.now(timezone.utc).date()
D0 = TODAY - 600 * DAY
DELTA, SNAPSHOT = agg_family.SERIES
TYPES = ["--aggregation-type", DELTA, "--aggregation-type", SNAPSHOT]
#: (record, created on day, community, removed on day) — days after D0
PLAN = [("r1", 0, "alpha", None), ("r2", 35, "alpha", None), ("r3", 80, "beta", None),
        ("r4", 150, "alpha", 300), ("r5", 220, None, None), ("r6", 400, "beta", None),
        ("r7", 500, "alpha", 540), ("r8", 598, "beta", None)]


def at(offset, hour=10):
    """An instant on day ``D0 + offset``."""
    return instant(D0 + offset * DAY, hour)


def build_history(make_record, identities, communities):
    """Publish and remove as :data:`PLAN` says; returns ``(record ids, changes)``.

    ``changes`` lists ``(community id, day, "added"|"removed")``, ``global``
    included: the oracle's input.
    """
    steps = []
    for key, created, community, removed in PLAN:
        steps.append((created, "create", key, community))
        if removed is not None:
            steps.append((removed, "remove", key, community))
    ids, changes = {}, []
    for offset, action, key, community in sorted(steps):
        community_id = str(communities[community].id) if community else None
        with travel(at(offset)):
            if action == "create":
                ids[key] = make_record(community_id=community_id).id
                changes.append(("global", D0 + offset * DAY, "added"))
                if community_id:
                    changes.append((community_id, D0 + offset * DAY, "added"))
            else:
                rdm.remove_from_community(identities["owner"], ids[key], community_id)
                changes.append((community_id, D0 + offset * DAY, "removed"))
    log.refresh()
    agg_family.count_only(list(ids.values()))  # not other modules' records
    return ids, changes


def history_fixture(order=("alpha", "beta", "global")):
    """A module's ``history`` fixture: the history made once per module (:func:`build_history`).

    Its value: ``ids``, ``changes``, ``expected`` (the oracle's documents),
    ``alpha``, ``beta`` (ids), ``alpha_slug``, ``beta_slug`` and
    ``communities`` (the ids in ``order``, ``global`` as is: the order the
    module's runs take them in).
    """
    @pytest.fixture(scope="module", name="history")
    def history_(services, make_record, identities, communities):
        """The planned history (``agg_helpers.PLAN``), made through the RDM services."""
        ids, changes = build_history(make_record, identities, communities)
        alpha, beta = str(communities["alpha"].id), str(communities["beta"].id)
        by_name = {"alpha": alpha, "beta": beta, "global": "global"}
        return {"ids": ids, "changes": changes, "expected": oracle(changes),
                "alpha": alpha, "beta": beta,
                "alpha_slug": communities["alpha"].data["slug"],
                "beta_slug": communities["beta"].data["slug"],
                "communities": [by_name[name] for name in order]}

    return history_


def stepped_config(interval):
    """A module's ``app_config`` fixture: a catch-up run takes ``interval`` days at most
    per series and community."""
    @pytest.fixture(scope="module", name="app_config")
    def app_config_(app_config):
        """Catch-up runs in steps (``COMMUNITY_STATS_CATCHUP_INTERVAL``)."""
        app_config["COMMUNITY_STATS_CATCHUP_INTERVAL"] = interval
        return app_config

    return app_config_


def oracle(changes, today=TODAY):
    """``{(series, community, day): body}`` every community with a change must get."""
    counts = Counter(changes)
    expected = {}
    for community in {c for c, _, _ in changes}:
        day = min(d for c, d, _ in changes if c == community)
        total = 0
        while day <= today:
            added, removed = counts[(community, day, "added")], counts[(community, day,
                                                                           "removed")]
            total += added - removed
            expected[(DELTA, community, day)] = {"records": {
                "added": {"metadata_only": added, "with_files": 0},
                "removed": {"metadata_only": removed, "with_files": 0}}}
            expected[(SNAPSHOT, community, day)] = {"total_records": {
                "metadata_only": total, "with_files": 0}}
            day += DAY
    return expected


PLACE = ("community_id", "period_start", "period_end", "snapshot_date")


def read_all(names=agg_family.SERIES, stamps=False):
    """``{(series, community, day): document}`` (without timestamps unless ``stamps``)."""
    found = {}
    for name in names:
        field = get(name).date_field
        for hit in series_hits(name):
            doc = hit["_source"]
            key = (name, doc["community_id"], docs.as_day(doc[field]))
            assert key not in found, f"two documents for {key}"
            assert hit["_id"] == docs.doc_id(doc["community_id"], key[2])
            found[key] = doc if stamps else without(doc, STAMPS + PLACE)
    return found


def bookmarks(names=agg_family.SERIES):
    """``{(series, community): day}`` of the bookmarks."""
    from invenio_stats_dashboard.aggregations.status import _bookmarks

    return {k: v for k, v in _bookmarks(current_search_client).items() if k[0] in names}


def reset():
    """Forget every aggregation output of this run: documents, bookmarks, state, locks, flags."""
    client = current_search_client
    for stem in ("stats-community-records-*", "stats-community-usage-*",
                 "stats-bookmarks-community", "stats-aggregation-state"):
        client.indices.delete(index=prefix_index(stem), ignore=[404],
                              expand_wildcards="all")
    r = redis_client()
    for pattern in ("lock:agg:*", "lock:community_stats_aggregation", "aggrun:*",
                    "cancel:*", agg_family.SPANS):
        for key in r.scan_iter(match=pattern):
            r.delete(key)
    from invenio_stats_dashboard.aggregations.runner import registry_client

    registry = registry_client()
    for key in registry.scan_iter(match="*_agg*"):
        registry.delete(key)
    for key in registry.scan_iter(match="*_first_run*"):
        registry.delete(key)


def spans():
    """Every recorded ``compute`` span (see ``agg_family``)."""
    return [json.loads(s) for s in redis_client().lrange(agg_family.SPANS, 0, -1)]


def overlapping(spans_):
    """Pairs of spans of one (chain, community) that ran at the same time."""
    bad = []
    for i, a in enumerate(spans_):
        for b in spans_[i + 1:]:
            if (a["chain"], a["community"]) == (b["chain"], b["community"]) and \
                    a["start"] < b["end"] and b["start"] < a["end"]:
                bad.append((a, b))
    return bad


def valid_through_bookmarks(reference):
    """Every day before each bookmark is written and equal to the reference (X2)."""
    found = read_all()
    for (name, community), mark in bookmarks().items():
        day = min(d for (n, c, d) in reference if (n, c) == (name, community))
        while day < mark:
            assert found.get((name, community, day)) == reference[(name, community, day)], \
                (name, community, day, mark)
            day += DAY
    return True


def as_date(value):
    return value if isinstance(value, date) else docs.as_day(value)
