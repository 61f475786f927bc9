# Part of invenio-stats-dashboard (MIT License).
"""Acceptance: every aggregation document equals the reference computation (issue 11).

The history (``agg_history.drive``) goes through the real RDM services at
chosen instants; usage events go through the real emitters, builders and
indexer (and, in one test, through a legacy month and the migration). The
expected documents come from ``agg_oracle``, which reads only what the test
did (records read back from the RDM API, the membership actions as driven,
the events as planned) — never the membership log or any code under test.
The aggregation runs through its public face,
``current_community_stats_service.aggregate_stats``.
"""

from collections import defaultdict
from datetime import timedelta

import arrow
import pytest
from invenio_search.engine import search
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from invenio_stats_dashboard.proxies import current_event_reindexing_service
from invenio_stats_dashboard.search_indices.event_builders import EnrichedEventsIndexer
from invenio_stats_dashboard.services import events_log

from agg_common import without_timestamps
from agg_history import (
    LAST_DAY,
    Driver,
    day,
    drive,
    emit_live,
    enable_dashboard,
    init_journal_field,
    plan_usage,
    process_queues,
    raw_events,
)
from agg_compare import compare
from agg_oracle import GLOBAL, SERIES, Oracle, days
from agg_run import aggregate as run_aggregation
from agg_run import engine, read_all, report, required_from
from legacy_indices import index_legacy

TOP_LIMIT = 2  # small, so that top lists are cut and ties decided (S6)
FIRST, LAST = day(0), day(LAST_DAY)
USAGE = ["community-usage-delta-agg", "community-usage-snapshot-agg"]


@pytest.fixture(scope="module")
def app_config(app_config):
    """A small top limit; the journal custom field (the ``periodicals`` subcount)."""
    from invenio_rdm_records.contrib.journal import JOURNAL_CUSTOM_FIELDS, JOURNAL_NAMESPACE

    app_config["COMMUNITY_STATS_TOP_SUBCOUNT_LIMIT"] = TOP_LIMIT
    app_config["RDM_NAMESPACES"] = {**JOURNAL_NAMESPACE}
    app_config["RDM_CUSTOM_FIELDS"] = [*JOURNAL_CUSTOM_FIELDS]
    return app_config


@pytest.fixture(scope="module")
def world(services, identities, communities):
    """The history, its usage events indexed live, and the oracle over both."""
    a, b = communities["alpha"].id, communities["beta"].id
    init_journal_field(services)
    for community in (a, b):
        enable_dashboard(community)
    driver = Driver(identities, communities)
    g = drive(driver, a, b)
    planned = plan_usage(driver)
    emit_live(planned)
    oracle = Oracle(driver.records(), driver.history, [e for e, _, _ in planned],
                    top_limit=TOP_LIMIT)
    names = {a: "alpha", b: "beta", g: "gamma", GLOBAL: "global",
             communities["secret"].id: "secret"}
    return {"oracle": oracle, "planned": planned, "driver": driver, "names": names,
            "compared": [a, b, GLOBAL], "a": a, "b": b, "g": g}


# --- the inputs themselves --------------------------------------------------------

def history_lines(world, only=None):
    """Pairs whose driven membership (M1–M5) differs from the log's transitions."""
    oracle = world["oracle"]
    expected = {(r, c): [(w, s) for w, _, s in tl]
                for c, recs in oracle.timelines.items() for r, tl in recs.items()}
    found = defaultdict(list)
    for t in events_log.iter_transitions(list(world["driver"].ids.values())):
        found[(t.record_id, t.community_id)].append(
            (arrow.get(t.event_date).datetime, t.event_type == "added"))
    names = {v: k for k, v in world["driver"].ids.items()} | world["names"]
    return [f"{names[r]} in {names[c]}: driven {expected.get((r, c))}, logged {found.get((r, c))}"
            for r, c in sorted(set(found) | set(expected))
            if (only is None or (names[r], names[c]) == only)
            and found.get((r, c)) != expected.get((r, c))]


def test_the_driven_history_is_what_the_services_recorded(world):
    """The oracle's membership equals the log's transitions.

    Not an input of the oracle: a check that the driver wrote down what the
    services did, so that a mismatch below is the aggregation's. It covers v3,
    published while its parent was out of beta: when the parent comes back, the
    log must not invent a stay of v3 there before the re-addition (M5; the
    database alone dates the earlier stay's end only by an estimate).
    """
    lines = history_lines(world)
    assert not lines, report(lines)


def test_live_stamps_are_the_oracles(world):
    """U1/T3 as the oracle applies them equal what the live indexer stamped."""
    usage = world["oracle"].usage
    expected = {(e.kind, e.recid, e.second.strftime("%Y-%m-%dT%H:%M:%S")): sorted(
        usage.stamps[id(e)]) for e in usage.events}
    assert expected == stamps(robots=False)


def test_migrated_stamps_are_the_oracles(world):
    """The same events as legacy stock months, migrated: the same stamps (U1, T3)."""
    usage = world["oracle"].usage
    expected = {(e.kind, e.recid, e.second.strftime("%Y-%m-%dT%H:%M:%S")): sorted(
        usage.stamps[id(e)]) for e in usage.events}
    try:
        replace_events(world["planned"], migrated=True)
        assert expected == stamps(robots=False)
        assert len(stamps(robots=True)) == len(world["planned"])
    finally:
        replace_events(world["planned"], migrated=False)


def stamps(robots):
    current_search_client.indices.refresh(index=prefix_index("events-stats-*"))
    found = {}
    for kind, stem in (("view", "record-view"), ("download", "file-download")):
        for h in search.helpers.scan(current_search_client,
                                     index=prefix_index(f"events-stats-{stem}"),
                                     query={"query": {"match_all": {}}}):
            s = h["_source"]
            if robots or not (s.get("is_robot") or s.get("is_machine")):
                found[(kind, s["recid"], s["timestamp"])] = sorted(s.get("community_ids", []))
    return found


# --- the aggregation --------------------------------------------------------------

def aggregate(types=None, start=FIRST, end=LAST, ignore_bookmark=False):
    return run_aggregation(start, end, types, ignore_bookmark)


def mismatches(world, found, series_names=SERIES):
    """Every difference from the oracle, one readable line each."""
    oracle, names = world["oracle"], world["names"]
    lines = []
    for series in series_names:
        docs = found[series]
        for community in world["compared"]:
            first = required_from(oracle, series, community)
            for d in days(FIRST, LAST):
                if (community, d) not in docs and (first is None or d < first):
                    continue  # before the community's history: no document is fine
                if (community, d) not in docs:
                    lines.append(f"{series} {names[community]} {d}: no document")
        for (community, d), doc in sorted(docs.items(), key=str):
            if community not in world["compared"]:
                lines.append(f"{series} {names.get(community, community)} {d}: "
                             "document for a community whose dashboard is not enabled (§8.4)")
                continue
            for path, exp, fnd in compare(oracle, series, community, d, doc):
                lines.append(f"{series} {names[community]} {d} {path}: "
                             f"expected {exp!r}, found {fnd!r}")
    return lines


@pytest.fixture(scope="module")
def aggregated(world):
    aggregate()
    return read_all()


@engine
def test_every_document_equals_the_oracle(world, aggregated):
    """All eight series, every community (and ``global``) and day, field by field."""
    lines = mismatches(world, read_all())
    assert not lines, report(lines)


@engine
def test_migrated_events_give_the_same_usage_documents(world, aggregated):
    """The same events as legacy stock months, migrated, give the oracle's usage documents."""
    try:
        replace_events(world["planned"], migrated=True)
        aggregate(USAGE, ignore_bookmark=True)
        lines = mismatches(world, read_all(USAGE), USAGE)
        assert not lines, report(lines)
    finally:
        replace_events(world["planned"], migrated=False)
        aggregate(USAGE, ignore_bookmark=True)


def replace_events(planned, migrated):
    """Delete this run's usage events; index ``planned`` live or as migrated legacy months."""
    current_search_client.indices.delete(index=prefix_index("events-stats-*"),
                                         ignore=[404], expand_wildcards="all")
    EnrichedEventsIndexer._mappings.clear()
    if migrated:
        index_legacy(raw_events(planned))
        # fresh start: this run's earlier migrations of these months were deleted above
        report_ = current_event_reindexing_service.reindex_events(fresh_start=True)
        assert report_["completed"], report_
    else:
        emit_live(planned)
    process_queues()


@engine
def test_records_snapshots_follow_deltas_and_membership(world, aggregated):
    """R2 on every community and day: snapshot(D) = snapshot(D-1) + added(D) − removed(D),
    and the records of every snapshot are the members at the end of D."""
    found, oracle, names = read_all(), world["oracle"], world["names"]
    by_id = {r.id: r for r in oracle.records}
    lines = []
    for basis in ("added", "created", "published"):
        deltas = found[f"community-records-delta-{basis}-agg"]
        snaps = found[f"community-records-snapshot-{basis}-agg"]
        for community in world["compared"]:
            for d in days(FIRST + timedelta(days=1), LAST):
                prev, snap, delta = (snaps.get((community, d - timedelta(days=1))),
                                     snaps.get((community, d)), deltas.get((community, d)))
                if snap is None or prev is None or delta is None:
                    continue
                for group, total in (("records", "total_records"), ("files", "total_files")):
                    for k, value in snap[total].items():
                        step = delta[group]["added"][k] - delta[group]["removed"][k]
                        if abs(prev[total][k] + step - value) > 1e-6:
                            lines.append(f"{basis} {names[community]} {d} {total}.{k}: "
                                         f"{prev[total][k]} + {step} != {value}")
            if basis != "added":
                continue
            for d in days(FIRST, LAST):
                snap = snaps.get((community, d))
                members = [by_id[r] for r in oracle.members(community, d)]
                expected = {k: sum(r.klass == k for r in members)
                            for k in ("metadata_only", "with_files")}
                if snap is not None and snap["total_records"] != expected:
                    lines.append(f"{names[community]} {d} members {expected}, "
                                 f"snapshot {snap['total_records']}")
    assert not lines, report(lines)


@engine
def test_a_catch_up_in_steps_equals_the_oracle(world, aggregated):
    """Runs that continue from their bookmarks (snapshots from the stored state, top-N
    counters included) give the oracle's documents too: d0–d9, then d10–d22, then on."""
    aggregate(end=day(9), ignore_bookmark=True)
    aggregate(end=day(22))
    aggregate()
    lines = mismatches(world, read_all())
    assert not lines, report(lines)


@engine
def test_running_a_range_again_changes_nothing(world, aggregated):
    """X1: a re-run (a sub-range, then the whole range) rewrites identical documents."""
    before = read_all()
    aggregate(start=day(10), end=day(20), ignore_bookmark=True)
    aggregate(ignore_bookmark=True)
    after = read_all()
    for series in SERIES:
        assert without_timestamps(after[series]) == without_timestamps(before[series]), series
