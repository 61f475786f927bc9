# Part of invenio-stats-dashboard (MIT License).
"""Snapshots: records (added basis) from the deltas, usage from the deltas (R2, R4, S6, U4, X1).

Records snapshots are checked against the members at the end of each day and
their values written down by hand (``aggregation_history.py``), not against
the deltas they are computed from. Usage snapshots are fed with delta
documents written here (the usage deltas are another family's job) and
checked against sums and rankings worked out by hand.
"""

import time
from collections import defaultdict

import pytest
from invenio_access.permissions import system_identity
from invenio_rdm_records.proxies import current_rdm_records_service
from invenio_search.proxies import current_search_client

from invenio_stats_dashboard.aggregations import documents as docs
from invenio_stats_dashboard.aggregations import runner
from invenio_stats_dashboard.aggregations.bookmarks import CommunityBookmarkAPI
from invenio_stats_dashboard.aggregations.mappings import put_templates
from invenio_stats_dashboard.aggregations.series import get
from invenio_stats_dashboard.aggregations.state import AggregationState
from invenio_stats_dashboard.aggregations.status import clear_bookmarks

from agg_common import without_timestamps
from aggregation_history import D, build, facts, members, read, run, totals_of

DELTA, SNAPSHOT = "community-records-delta-added-agg", "community-records-snapshot-added-agg"
ALL_KEYS = ("resource_types", "access_statuses", "file_types")
TOP_KEYS = ("languages", "subjects", "rights", "funders", "periodicals", "publishers",
            "affiliations")


@pytest.fixture(scope="module")
def history(services, identities, communities):
    return build(identities, communities)


def values(h):
    """Per record, its subcount values: ``{key: {id: (label, file count, volume)}}``, by hand."""
    dataset, software = ("dataset", {"en": "Dataset"}), ("software", {"en": "Software"})

    def v(*pairs, files=(0, 0.0)):
        return {ident: (label, *files) for ident, label in pairs}

    return {
        h.r1: {"resource_types": v(dataset), "access_statuses": v(("metadata-only",) * 2),
               "languages": v(("eng", {"en": "English"})),
               "funders": v(("00k4n6c32", "European Commission")),
               "affiliations": v(("01ggx4157", "CERN"), ("05gq02987", "Brown University"))},
        h.v1: {"resource_types": v(dataset), "access_statuses": v(("metadata-only",) * 2)},
        h.v2: {"resource_types": v(dataset, files=(1, 20.0)),
               "access_statuses": v(("open",) * 2, files=(1, 20.0)),
               "file_types": v(("pdf",) * 2, files=(1, 20.0))},
        h.r2: {"resource_types": v(dataset, files=(2, 15.0)),
               "access_statuses": v(("open",) * 2, files=(2, 15.0)),
               "languages": v(("eng", {"en": "English"}), ("fra", {"en": "French"}),
                              files=(2, 15.0)),
               "file_types": {"csv": ("csv", 1, 10.0), "txt": ("txt", 1, 5.0)}},
        h.r3: {"resource_types": v(software, files=(1, 7.0)),
               "access_statuses": v(("open",) * 2, files=(1, 7.0)),
               "rights": v(("cc-by-4.0", {"en": "Creative Commons Attribution 4.0 "
                                                "International"}), files=(1, 7.0)),
               "file_types": v(("csv",) * 2, files=(1, 7.0))},
        h.r5: {"resource_types": v(dataset), "access_statuses": v(("metadata-only",) * 2)},
    }


def expected_subcounts(h, record_ids, limit=20):
    """Snapshot subcounts of a member set: records, distinct parents, own files (S2–S6)."""
    f, vals = facts(h), values(h)
    table = defaultdict(dict)
    for r in record_ids:
        _owner, parent, cls, *_ = f[r]
        for key, items in vals[r].items():
            for ident, (label, count, volume) in items.items():
                e = table[key].setdefault(ident, {"label": label, "records": defaultdict(int),
                                                  "parents": defaultdict(set), "files": [0, 0.0]})
                e["records"][cls] += 1
                e["parents"][cls].add(parent)
                e["files"][0] += count
                e["files"][1] += volume

    def item(ident, e):
        return {"id": ident, "label": e["label"],
                "records": {c: e["records"][c] for c in ("metadata_only", "with_files")},
                "parents": {c: len(e["parents"][c]) for c in ("metadata_only", "with_files")},
                "files": {"file_count": e["files"][0], "data_volume": e["files"][1]}}

    out = {}
    for key in ALL_KEYS:
        out[key] = [item(i, e) for i, e in sorted(table[key].items())]
    for key in TOP_KEYS:
        ranked = sorted(table[key].items(),
                        key=lambda p: (-sum(p[1]["records"].values()), p[0]))
        out[key] = [item(i, e) for i, e in ranked[:limit]]
    return out


def check_snapshots(h, limit=20):
    expected = members(h)
    for community, days in expected.items():
        deltas, snapshots = read(DELTA, community), read(SNAPSHOT, community)
        previous = None
        for n, member_set in days.items():
            if D(n) < min(snapshots) and not member_set:
                continue  # a series begins at the community's first transition (engine)
            doc = snapshots[D(n)]
            assert doc["snapshot_date"] == f"{D(n).isoformat()}T00:00:00"
            want = totals_of(h, member_set)
            assert {k: doc[k] for k in want} == want, (community, n)
            assert doc["subcounts"] == expected_subcounts(h, member_set, limit), (community, n)
            # R2: records and files are the previous snapshot plus added minus removed.
            delta = deltas[D(n)]
            for total, block, fields in (("total_records", "records", ("metadata_only",
                                                                        "with_files")),
                                         ("total_files", "files", ("file_count",
                                                                   "data_volume"))):
                for name in fields:
                    before = previous[total][name] if previous else 0
                    assert doc[total][name] == (before + delta[block]["added"][name]
                                                - delta[block]["removed"][name])
            previous = doc


def test_records_snapshots_describe_the_members(history):
    h = history
    run([DELTA, SNAPSHOT], [h.A, h.G, "global"], D(1), D(8), ignore_bookmark=True)
    check_snapshots(h)


def test_top_subcounts_keep_the_n_largest_ties_by_id(history, services):
    h = history
    run([DELTA], [h.A, h.G, "global"], D(1), D(8), ignore_bookmark=True)
    services.config["COMMUNITY_STATS_TOP_SUBCOUNT_LIMIT"] = 1
    try:
        run([SNAPSHOT], [h.A, h.G, "global"], D(1), D(8), ignore_bookmark=True)
    finally:
        services.config["COMMUNITY_STATS_TOP_SUBCOUNT_LIMIT"] = 20
    check_snapshots(h, limit=1)
    glob = read(SNAPSHOT, "global")[D(2)]["subcounts"]
    assert [i["id"] for i in glob["languages"]] == ["eng"]  # 2 records against 1
    assert [i["id"] for i in glob["affiliations"]] == ["01ggx4157"]  # a tie: id ascending
    assert [i["id"] for i in glob["funders"]] == ["00k4n6c32"]


def test_continuing_and_restarting_give_the_same_snapshots(history):
    """X1/X2: a run continued from the stored counters, or restarted in the middle
    (counters rebuilt from the deltas), writes what one run from the start writes."""
    h = history
    communities = [h.A, "global"]
    run([DELTA, SNAPSHOT], communities, D(1), D(8), ignore_bookmark=True)
    whole = {c: without_timestamps(read(SNAPSHOT, c)) for c in communities}

    # A snapshot recompute always runs on to its delta's bookmark (engine: what is
    # derived from rewritten days is re-derived), so a run that ends at D4 is a
    # fresh one: no bookmarks, the delta up to D4 and its snapshot after it.
    clear_bookmarks([get(DELTA), get(SNAPSHOT)], communities)
    run([DELTA, SNAPSHOT], communities, D(1), D(4))
    state = AggregationState()
    assert state.get(SNAPSHOT, h.A)[0][:10] == D(3).isoformat()  # as of the day before D4
    run([DELTA, SNAPSHOT], communities, D(1), D(8))  # from the bookmarks (D4): continues
    assert state.get(SNAPSHOT, h.A)[0][:10] == D(7).isoformat()
    assert {c: without_timestamps(read(SNAPSHOT, c)) for c in communities} == whole

    run([SNAPSHOT], communities, D(6), D(7), ignore_bookmark=True)  # state ahead: rebuilt
    assert {c: without_timestamps(read(SNAPSHOT, c)) for c in communities} == whole

    run([SNAPSHOT], communities, D(1), D(3), ignore_bookmark=True)  # runs on to D8
    run([SNAPSHOT], communities, D(6), D(8), ignore_bookmark=True)  # state ahead: rebuilt
    assert state.get(SNAPSHOT, h.A)[0][:10] == D(7).isoformat()
    assert {c: without_timestamps(read(SNAPSHOT, c)) for c in communities} == whole


def _set_languages(record_id, languages):
    """Edit a published record's languages through the service (a metadata fix)."""
    service, identity = current_rdm_records_service, system_identity
    draft = service.edit(identity, record_id)
    data = draft.data
    data["metadata"]["languages"] = [{"id": lang} for lang in languages]
    service.update_draft(identity, record_id, data)
    service.publish(identity, record_id)
    service.indexer.refresh()


def test_snapshot_rebuilds_when_its_deltas_were_rewritten(history):
    """Late data: deltas recomputed after the snapshot's counters were stored make the
    next snapshot run rebuild them (not continue from outdated counters)."""
    h = history
    run([DELTA, SNAPSHOT], [h.A], D(1), D(8), ignore_bookmark=True)
    time.sleep(1.1)  # documents are stamped to the second: the recompute is a later one
    _set_languages(h.r1, ["eng", "fra"])
    try:
        run([DELTA], [h.A], D(1), D(8), ignore_bookmark=True)  # the recompute path
        run([SNAPSHOT], [h.A], D(1), D(8))  # from its bookmark, as the hourly run
        languages = read(SNAPSHOT, h.A)[D(8)]["subcounts"]["languages"]
        assert [(i["id"], i["records"]["metadata_only"]) for i in languages] == [
            ("eng", 1), ("fra", 1)]
    finally:
        _set_languages(h.r1, ["eng"])


def test_a_missing_delta_day_stops_that_community_only(history):
    """G18: a delta day missing under a community's snapshot fails that community with
    one message and nothing past the gap is written or bookmarked, the other
    communities are written; once the delta is recomputed the next run completes."""
    from invenio_stats_dashboard.aggregations.runner import aggregate

    h = history
    communities = [h.A, "global"]
    run([DELTA, SNAPSHOT], communities, D(1), D(8), ignore_bookmark=True)
    whole = {c: without_timestamps(read(SNAPSHOT, c)) for c in communities}
    for name, day in ((DELTA, D(5)), (SNAPSHOT, None)):
        query = [{"term": {"community_id": h.A}}]
        if day:
            query.append({"term": {"period_start": f"{day.isoformat()}T00:00:00"}})
        current_search_client.delete_by_query(
            index=docs.alias_name(get(name)), refresh=True,
            body={"query": {"bool": {"filter": query}}})
    clear_bookmarks([get(SNAPSHOT)], communities)

    report = aggregate([SNAPSHOT], community_ids=communities, start_date=D(1).isoformat(),
                       end_date=D(8).isoformat())
    (result,) = report["results"]
    assert result["status"] == "failed"
    assert result["error_details"] == [
        f"{h.A}: DeltaDataGapError: {DELTA} has no document for {h.A} on {D(5)}: "
        "aggregate the delta series first"]
    assert result["communities"]["global"]["error"] is None
    assert without_timestamps(read(SNAPSHOT, "global")) == whole["global"]
    assert all(day < D(5) for day in read(SNAPSHOT, h.A))  # nothing past the gap
    mark = CommunityBookmarkAPI(current_search_client, SNAPSHOT).get_bookmark(h.A)
    assert mark is None or str(mark)[:10] <= D(4).isoformat()

    run([DELTA], [h.A], D(1), D(8), ignore_bookmark=True)
    run([SNAPSHOT], [h.A], D(1), D(8))
    assert without_timestamps(read(SNAPSHOT, h.A)) == whole[h.A]


# --- usage snapshots -----------------------------------------------------------

USAGE_DELTA, USAGE_SNAPSHOT = "community-usage-delta-agg", "community-usage-snapshot-agg"
VIEW = ("total_events", "unique_visitors", "unique_records", "unique_parents")
DOWNLOAD = VIEW + ("unique_files", "total_volume")


def side(names, numbers):
    return {n: (float(v) if n == "total_volume" else v) for n, v in zip(names, numbers)}


def usage_item(ident, view=(0,) * 4, download=(0,) * 6, label=None):
    return {"id": ident, "label": label if label is not None else ident,
            "view": side(VIEW, view), "download": side(DOWNLOAD, download)}


#: Three days of usage deltas of one community, written here (the inputs).
USAGE = {
    1: {"totals": ((10, 6, 3, 3), (4, 2, 2, 2, 3, 400)),
        "countries": [usage_item("US", (5, 3, 2, 2)), usage_item("DE", (3, 2, 1, 1),
                                                                  (2, 1, 1, 1, 1, 100))],
        "resource_types": [usage_item("dataset", (10, 6, 3, 3), (4, 2, 2, 2, 3, 400),
                                      {"en": "Dataset"})]},
    2: {"totals": ((4, 4, 2, 2), (3, 3, 1, 1, 1, 300)),
        "countries": [usage_item("DE", (4, 4, 2, 2), (1, 1, 1, 1, 1, 100)),
                      usage_item("FR", download=(2, 2, 1, 1, 1, 200))],
        "resource_types": [usage_item("dataset", (4, 4, 2, 2), (3, 3, 1, 1, 1, 300),
                                      {"en": "Dataset"})]},
    3: {"totals": ((0,) * 4, (0,) * 6), "countries": [], "resource_types": []},
}


def test_usage_snapshots_sum_the_deltas(history, services):
    community = "usage-community"
    put_templates()
    series = get(USAGE_DELTA)
    keys = [k for k, v in services.config["COMMUNITY_STATS_SUBCOUNTS"].items()
            if (v.get("usage_events") or {}).get("source_fields")]
    for n, day in USAGE.items():
        view, download = day["totals"]
        body = {"community_id": community,
                "period_start": f"{D(n).isoformat()}T00:00:00",
                "period_end": f"{D(n).isoformat()}T23:59:59",
                "timestamp": "2024-05-09T00:00:00", "updated_timestamp": "2024-05-09T00:00:00",
                "totals": {"view": side(VIEW, view), "download": side(DOWNLOAD, download)},
                "subcounts": {k: day.get(k, []) for k in keys}}
        current_search_client.index(index=docs.index_name(series, D(n)),
                                    id=docs.doc_id(community, D(n)), body=body)
    current_search_client.indices.refresh(index=docs.alias_name(series))
    CommunityBookmarkAPI(current_search_client, USAGE_DELTA).set_bookmark(
        community, D(3).isoformat())
    services.config["COMMUNITY_STATS_TOP_SUBCOUNT_LIMIT"] = 1
    try:
        # not a real community: the runner itself (aggregate() checks ids)
        report = runner.run([USAGE_SNAPSHOT], [community], D(1), D(3), ignore_bookmark=True)
        assert [r["status"] for r in report["results"]] == ["success"], report
    finally:
        services.config["COMMUNITY_STATS_TOP_SUBCOUNT_LIMIT"] = 20
    found = read(USAGE_SNAPSHOT, community)
    assert set(found) == {D(1), D(2), D(3)}
    d1, d2, d3 = (found[D(n)] for n in (1, 2, 3))
    # U4: every metric summed, unique_* included (visitor-days).
    assert d2["totals"] == {"view": side(VIEW, (14, 10, 5, 5)),
                            "download": side(DOWNLOAD, (7, 5, 3, 3, 4, 700))}
    assert d3["totals"] == d2["totals"]
    # "all" key: every item, by id.
    assert d2["subcounts"]["resource_types"] == [
        usage_item("dataset", (14, 10, 5, 5), (7, 5, 3, 3, 4, 700), {"en": "Dataset"})]
    # "top" key, N = 1: D1 US leads views (5 > 3), DE downloads; D2 DE leads views
    # (7 > 5); downloads DE 3 events, FR 2: DE.
    de1 = usage_item("DE", (3, 2, 1, 1), (2, 1, 1, 1, 1, 100))
    assert d1["subcounts"]["countries"] == {"by_view": [usage_item("US", (5, 3, 2, 2))],
                                            "by_download": [de1]}
    de2 = usage_item("DE", (7, 6, 3, 3), (3, 2, 2, 2, 2, 200))
    assert d2["subcounts"]["countries"] == {"by_view": [de2], "by_download": [de2]}
    # Every configured key is there: top keys as the two lists, empty when nothing.
    assert d3["subcounts"]["languages"] == {"by_view": [], "by_download": []}
    assert d3["subcounts"]["file_types"] == []
