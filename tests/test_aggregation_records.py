# Part of invenio-stats-dashboard (MIT License).
"""Records deltas: added basis (R1, R3, R4, R4a, M3, S2–S7) and created/published bases (R5).

The history (``aggregation_history.py``) is driven through the RDM services
under time travel; every expected number below is written down by hand from
that history and the counting rules.
"""

from datetime import date

import pytest

from invenio_stats_dashboard.aggregations import record_metrics, records
from invenio_stats_dashboard.services import events_log as log

from agg_common import without_timestamps
from aggregation_history import D, build, read, run, totals_of

ADDED = "community-records-delta-added-agg"
KEYS = ("resource_types", "access_statuses", "languages", "subjects", "rights", "funders",
        "periodicals", "publishers", "affiliations", "file_types")


@pytest.fixture(scope="module")
def history(services, identities, communities):
    return build(identities, communities)


def split(pair):
    return {"metadata_only": pair[0], "with_files": pair[1]}


def blocks(added=(0, 0), removed=(0, 0), p_added=(0, 0), p_removed=(0, 0),
           f_added=(0, 0), f_removed=(0, 0)):
    return {"records": {"added": split(added), "removed": split(removed)},
            "parents": {"added": split(p_added), "removed": split(p_removed)},
            "files": {"added": {"file_count": f_added[0], "data_volume": float(f_added[1])},
                      "removed": {"file_count": f_removed[0],
                                  "data_volume": float(f_removed[1])}}}


def delta(uploaders=0, hidden=((0, 0), 0), **kw):
    """Top level of a delta and its hidden snapshot change (parents, uploaders)."""
    return {**blocks(**kw), "uploaders": uploaders,
            "_snapshot": {"parents": split(hidden[0]), "uploaders": hidden[1]}}


def item(ident, label, **kw):
    return {"id": ident, "label": label, **blocks(**kw)}


ZERO = delta()
DATASET, SOFTWARE = {"en": "Dataset"}, {"en": "Software"}
ENGLISH, FRENCH = {"en": "English"}, {"en": "French"}
CC_BY = {"en": "Creative Commons Attribution 4.0 International"}


def expected_totals(h):
    """Top-level delta per (community, day), from the history by hand."""
    a = {
        1: delta(added=(2, 0), p_added=(2, 0), uploaders=1, hidden=((2, 0), 1)),
        2: delta(added=(0, 2), p_added=(0, 2), f_added=(3, 22), uploaders=2,
                 hidden=((0, 2), 1)),
        # r1 removed at 11:00 and back at 12:00: one of each (R1), its parent too.
        3: delta(added=(1, 0), removed=(1, 0), p_added=(1, 0), p_removed=(1, 0), uploaders=1),
        # r3 deleted, r2 removed: P has no member left, O still has r1 and v1.
        4: delta(removed=(0, 2), p_removed=(0, 2), f_removed=(3, 22), hidden=((0, -2), -1)),
        # r2 deleted after leaving A: nothing (M3). v2 joins: a record, no parent (R4a),
        # but the parent now has a version with files.
        5: delta(added=(0, 1), f_added=(1, 20), uploaders=1, hidden=((0, 1), 0)),
        6: delta(added=(0, 1), p_added=(0, 1), f_added=(1, 7), uploaders=1,
                 hidden=((0, 1), 0)),  # r3 restored
        7: delta(added=(1, 0), removed=(1, 0), p_added=(1, 0), p_removed=(1, 0), uploaders=1),
        8: ZERO,
    }
    g = {n: ZERO for n in range(1, 9)}
    g[2] = delta(added=(0, 1), p_added=(0, 1), f_added=(1, 7), uploaders=1, hidden=((0, 1), 1))
    g[4] = delta(removed=(0, 1), p_removed=(0, 1), f_removed=(1, 7), hidden=((0, -1), -1))
    # (D6: r3 restored, but gamma was deleted meanwhile: not re-added, M3.)
    glob = {
        1: delta(added=(2, 0), p_added=(2, 0), uploaders=1, hidden=((2, 0), 1)),
        2: delta(added=(0, 2), p_added=(0, 2), f_added=(3, 22), uploaders=2,
                 hidden=((0, 2), 1)),
        3: ZERO,
        4: delta(removed=(0, 1), p_removed=(0, 1), f_removed=(1, 7), hidden=((0, -1), 0)),
        # r2 deleted (its parent leaves), v2 published (no new parent; p4 gains files).
        5: delta(added=(0, 1), removed=(0, 1), p_removed=(0, 1), f_added=(1, 20),
                 f_removed=(2, 15), uploaders=1, hidden=((0, 0), -1)),
        6: delta(added=(0, 1), p_added=(0, 1), f_added=(1, 7), uploaders=1,
                 hidden=((0, 1), 0)),
        7: delta(added=(1, 0), p_added=(1, 0), uploaders=1, hidden=((1, 0), 0)),
        8: ZERO,
    }
    return {h.A: a, h.G: g, "global": glob}


def expected_alpha_subcounts():
    """Subcounts of A on D1–D5, by hand (S2–S7)."""
    r1_items = lambda **kw: {  # noqa: E731 - r1's values, on one side or both
        "resource_types": [item("dataset", DATASET, **kw)],
        "access_statuses": [item("metadata-only", "metadata-only", **kw)],
        "languages": [item("eng", ENGLISH, **kw)],
        "funders": [item("00k4n6c32", "European Commission", **kw)],
        # CERN counted once though a creator and a contributor carry it (S3).
        "affiliations": [item("01ggx4157", "CERN", **kw),
                         item("05gq02987", "Brown University", **kw)]}
    d1 = r1_items(added=(1, 0), p_added=(1, 0))
    d1["resource_types"] = [item("dataset", DATASET, added=(2, 0), p_added=(2, 0))]
    d1["access_statuses"] = [item("metadata-only", "metadata-only", added=(2, 0),
                                  p_added=(2, 0))]

    def r2_r3(side):
        s = "added" if side == "added" else "removed"
        kw = lambda n, files: {s: (0, n), f"p_{s}": (0, n), f"f_{s}": files}  # noqa: E731
        return {
            "resource_types": [item("dataset", DATASET, **kw(1, (2, 15))),
                               item("software", SOFTWARE, **kw(1, (1, 7)))],
            "access_statuses": [item("open", "open", **kw(2, (3, 22)))],
            "languages": [item("eng", ENGLISH, **kw(1, (2, 15))),
                          item("fra", FRENCH, **kw(1, (2, 15)))],
            "rights": [item("cc-by-4.0", CC_BY, **kw(1, (1, 7)))],
            # r3's funder has a name only: no id, not counted (S4, as S3)
            # each extension with its own files only (S5)
            "file_types": [item("csv", "csv", **kw(2, (2, 17))),
                           item("txt", "txt", **kw(1, (1, 5)))]}

    d5 = {  # v2: a record of a parent already in A; per item, R4a over the carriers
        "resource_types": [item("dataset", DATASET, added=(0, 1), f_added=(1, 20))],
        "access_statuses": [item("open", "open", added=(0, 1), p_added=(0, 1),
                                 f_added=(1, 20))],
        "file_types": [item("pdf", "pdf", added=(0, 1), p_added=(0, 1), f_added=(1, 20))]}
    both = dict(added=(1, 0), removed=(1, 0), p_added=(1, 0), p_removed=(1, 0))
    return {1: d1, 2: r2_r3("added"), 3: r1_items(**both), 4: r2_r3("removed"), 5: d5}


def check_added_basis(h):
    totals = expected_totals(h)
    for community, days in totals.items():
        found = read(ADDED, community)
        for n, want in days.items():
            if D(n) < min(found) and want == ZERO:
                continue  # a series begins at the community's first transition (engine)
            doc = found[D(n)]
            got = {k: doc[k] for k in ("records", "parents", "files", "uploaders")}
            got["_snapshot"] = {k: doc["_snapshot"][k] for k in ("parents", "uploaders")}
            assert got == want, (community, n)
            assert doc["period_start"] == f"{D(n).isoformat()}T00:00:00"
            assert doc["period_end"] == f"{D(n).isoformat()}T23:59:59"
    alpha = read(ADDED, h.A)
    for n, want in expected_alpha_subcounts().items():
        got = alpha[D(n)]["subcounts"]
        assert set(got) == set(KEYS)
        assert {k: v for k, v in got.items() if v} == want, n
    assert alpha[D(8)]["subcounts"] == {k: [] for k in KEYS}
    # per item, the hidden change of distinct parents (the snapshot's)
    assert alpha[D(5)]["_snapshot"]["subcounts"] == [
        {"key": "access_statuses", "id": "open", "metadata_only": 0, "with_files": 1},
        {"key": "file_types", "id": "pdf", "metadata_only": 0, "with_files": 1},
        {"key": "resource_types", "id": "dataset", "metadata_only": 0, "with_files": 1}]


def test_added_basis_counts_transitions(history):
    h = history
    # the whole range (another test of this module may have left a partial series)
    run([ADDED], [h.A, h.G, "global"], D(1), D(8), ignore_bookmark=True)
    check_added_basis(h)


def test_added_basis_is_exact_with_tiny_pages(history, monkeypatch):
    """Every reader pages: one touched record per batch, two ids per terms query, two hits
    per page, one bucket per composite page — the same documents."""
    h = history
    monkeypatch.setattr(records, "BATCH", 1)
    monkeypatch.setattr(records, "COMPOSITE_PAGE", 1)
    monkeypatch.setattr(record_metrics, "TERMS_CHUNK", 2)
    monkeypatch.setattr(record_metrics, "PAGE", 2)
    monkeypatch.setattr(log, "TERMS_CHUNK", 2)
    run([ADDED], [h.A, h.G, "global"], D(1), D(8), ignore_bookmark=True)
    check_added_basis(h)


def test_rerun_gives_identical_documents(history):
    """X1: any range run again gives the same documents apart from timestamps."""
    h = history
    names = [ADDED, "community-records-delta-created-agg",
             "community-records-delta-published-agg"]
    run(names, [h.A, "global"], D(1), D(8), ignore_bookmark=True)
    first = {(n, c): without_timestamps(read(n, c)) for n in names for c in (h.A, "global")}
    run(names, [h.A, "global"], D(3), D(6), ignore_bookmark=True)
    run(names, [h.A, "global"], D(1), D(8), ignore_bookmark=True)
    again = {(n, c): without_timestamps(read(n, c)) for n in names for c in (h.A, "global")}
    assert again == first


def test_created_and_published_bases(history, identities):
    """R5: members now by creation / publication date; back-dated publications are
    in every snapshot and get a delta document on their own day only."""
    h = history
    created = ("community-records-delta-created-agg", "community-records-snapshot-created-agg")
    published = ("community-records-delta-published-agg",
                 "community-records-snapshot-published-agg")
    names = [*created, *published]
    report = run(names, [h.A], D(1), D(8))
    now_in_a = [h.r1, h.v1, h.r3, h.v2]  # r2 deleted, r5 left

    def check(members, created_on, published_on):
        deltas = read(created[0], h.A)
        assert set(deltas) == {D(n) for n in range(1, 9)}
        for n in range(1, 9):
            dated = [r for r in members if created_on[r] == D(n)]
            assert_delta(deltas[D(n)], h, dated)
        snapshots = read(created[1], h.A)
        assert set(snapshots) == {D(n) for n in range(1, 9)}
        for n in range(1, 9):
            dated = [r for r in members if created_on[r] <= D(n)]
            assert_snapshot(snapshots[D(n)], h, dated)
        deltas = read(published[0], h.A)
        back = {published_on[r] for r in members}  # all before the floor (D1)
        assert set(deltas) == {D(n) for n in range(1, 9)} | back
        for day in back:
            assert_delta(deltas[day], h, [r for r in members if published_on[r] == day])
        for n in range(1, 9):
            assert_delta(deltas[D(n)], h, [])
        snapshots = read(published[1], h.A)
        assert set(snapshots) == {D(n) for n in range(1, 9)}  # daily from the floor only
        for n in range(1, 9):
            assert_snapshot(snapshots[D(n)], h, members)

    from aggregation_history import facts

    f = facts(h)
    created_on = {r: v[5] for r, v in f.items()}
    published_on = {r: v[6] for r, v in f.items()}
    check(now_in_a, created_on, published_on)
    assert published_on[h.v2] == date(1850, 1, 1)

    # r5 (created D7, published 2024-03-01) joins A now: the past changes (R5) and
    # only the documents that changed are rewritten, plus the day asked (D8).
    from invenio_stats_dashboard.demo import rdm

    rdm.add_to_community(identities["owner"], h.r5, h.A)
    log.refresh()
    report = run(names, [h.A], D(1), D(8))
    written = {r["aggregator"]: r["docs_indexed"] for r in report["results"]}
    assert written == {created[0]: 2, created[1]: 2,  # D7 changed, D8 asked
                       published[0]: 2,  # 2024-03-01 changed, D8 asked
                       published[1]: 8}  # every snapshot from the floor on
    check(now_in_a + [h.r5], created_on, published_on)

    # Nothing changed: only the day asked is written, without reading the members.
    report = run(names, [h.A], D(1), D(8))
    assert {r["docs_indexed"] for r in report["results"]} == {1}
    check(now_in_a + [h.r5], created_on, published_on)


def assert_delta(doc, h, record_ids):
    """R5 delta: the dated members, all on the added side, parents distinct in the set."""
    t = totals_of(h, record_ids)
    assert doc["records"] == {"added": t["total_records"], "removed": split((0, 0))}
    assert doc["parents"] == {"added": t["total_parents"], "removed": split((0, 0))}
    assert doc["files"] == {"added": t["total_files"],
                            "removed": {"file_count": 0, "data_volume": 0.0}}
    assert doc["uploaders"] == t["total_uploaders"]


def assert_snapshot(doc, h, record_ids):
    t = totals_of(h, record_ids)
    assert {k: doc[k] for k in t} == t


def test_a_range_after_the_newest_creation_still_counts_removals(history):
    """G5: upstream skipped a community whose newest record was created before the
    range. Gamma's newest member was created on D2; on D4 its only change is a
    deletion (r3), which a run of D4–D5 alone (its documents gone first) still counts."""
    from invenio_search.proxies import current_search_client

    from invenio_stats_dashboard.aggregations import documents as docs
    from invenio_stats_dashboard.aggregations.series import get

    h = history
    alias = docs.alias_name(get(ADDED))
    if current_search_client.indices.exists(index=alias):  # aggregated by an earlier test
        current_search_client.indices.refresh(index=alias)
        current_search_client.delete_by_query(index=alias, refresh=True, body={
            "query": {"term": {"community_id": h.G}}})
    try:
        run([ADDED], [h.G], D(4), D(5), ignore_bookmark=True)
        found = read(ADDED, h.G)
        want = expected_totals(h)[h.G]
        assert sorted(found) == [D(4), D(5)]
        for n in (4, 5):
            doc = found[D(n)]
            got = {k: doc[k] for k in ("records", "parents", "files", "uploaders")}
            got["_snapshot"] = {k: doc["_snapshot"][k] for k in ("parents", "uploaders")}
            assert got == want[n], n
        assert found[D(4)]["records"]["removed"] == {"metadata_only": 0, "with_files": 1}
    finally:  # the next test of this module finds gamma's whole series again
        run([ADDED], [h.G], D(1), D(8), ignore_bookmark=True)
