# Part of invenio-stats-dashboard (MIT License).
"""The reference computation itself, on small histories whose numbers are written by hand.

No services: these check ``agg_oracle`` alone, so that the acceptance tests
can trust it. Each expected number below was worked out from the counting
rules on paper (the rule is named next to it).
"""

from datetime import date

from agg_common import calendar
from agg_compare import compare, diff
from agg_oracle import GLOBAL, Event, History, Oracle, Record, publication_day, record_values

D0 = date(2024, 3, 10)
C, K = "c-uuid", "k-uuid"
day, at = calendar(D0)


def rec(id_, parent=None, owner="1", created=None, published="2024-03-01", files=(),
        **metadata):
    files = tuple((key, size, key.rsplit(".", 1)[-1]) for key, size in files)
    data = {"access": {"status": "open" if files else "metadata-only"},
            "metadata": {"resource_type": {"id": "dataset", "title": {"en": "Dataset"}},
                         **metadata}}
    return Record(id_, parent or f"p-{id_}", owner, created or at(0), publication_day(published),
                  bool(files), files, record_values(data, files))


def blocks(doc):
    """The top-level numbers of a records delta, flattened for readable asserts."""
    return {f"{g}.{side}.{k}": v for g in ("records", "parents", "files")
            for side, b in doc[g].items() for k, v in b.items() if v} | (
        {"uploaders": doc["uploaders"]} if doc["uploaders"] else {})


def totals(doc):
    return {f"{g}.{k}": v for g in ("total_records", "total_parents", "total_files")
            for k, v in doc[g].items() if v} | (
        {"uploaders": doc["total_uploaders"]} if doc["total_uploaders"] else {})


ADDED = "community-records-delta-added-agg"
SNAP = "community-records-snapshot-added-agg"


def test_additions_removals_and_day_edges():
    r1 = rec("r1", files=[("a.pdf", 10), ("b.csv", 20)])
    r2 = rec("r2", owner="2")
    h = History()
    h.publish(at(0, 10), "r1")
    h.add(at(0, 11), "r1", C)
    h.publish(at(0, 12), "r2")
    h.add(at(1), "r2", C)                     # 00:00:00.000 belongs to day 1 (T1)
    h.remove(at(1, 23, 59, 59, 999), "r1", C)  # the last instant of day 1
    o = Oracle([r1, r2], h)
    assert blocks(o.expected(ADDED, C, day(0))) == {
        "records.added.with_files": 1, "parents.added.with_files": 1,
        "files.added.file_count": 2, "files.added.data_volume": 30.0, "uploaders": 1}
    assert blocks(o.expected(ADDED, C, day(1))) == {
        "records.added.metadata_only": 1, "parents.added.metadata_only": 1,
        "records.removed.with_files": 1, "parents.removed.with_files": 1,
        "files.removed.file_count": 2, "files.removed.data_volume": 30.0, "uploaders": 1}
    assert blocks(o.expected(ADDED, C, day(2))) == {}
    assert blocks(o.expected(ADDED, GLOBAL, day(0))) == {
        "records.added.with_files": 1, "records.added.metadata_only": 1,
        "parents.added.with_files": 1, "parents.added.metadata_only": 1,
        "files.added.file_count": 2, "files.added.data_volume": 30.0, "uploaders": 2}
    assert totals(o.expected(SNAP, C, day(0))) == {
        "total_records.with_files": 1, "total_parents.with_files": 1,
        "total_files.file_count": 2, "total_files.data_volume": 30.0, "uploaders": 1}
    assert totals(o.expected(SNAP, C, day(1))) == {
        "total_records.metadata_only": 1, "total_parents.metadata_only": 1, "uploaders": 1}
    assert o.first_day(ADDED, C) == day(0)


def test_same_day_changes_count_once_each_way():
    h = History()
    for r in ("r1", "r2"):
        h.publish(at(0, 1), r)
    h.add(at(0, 2), "r1", C)
    h.remove(at(1, 9), "r1", C)   # left and re-entered on day 1 (R1)
    h.add(at(1, 10), "r1", C)
    h.add(at(1, 11), "r2", C)     # entered and left on day 1 (R1)
    h.remove(at(1, 12), "r2", C)
    h.remove(at(2, 8), "r1", C)   # a removal then a no-op removal (M4)
    h.remove(at(2, 9), "r1", C)
    o = Oracle([rec("r1"), rec("r2")], h)
    assert blocks(o.expected(ADDED, C, day(1))) == {
        "records.added.metadata_only": 2, "records.removed.metadata_only": 2,
        "parents.added.metadata_only": 2, "parents.removed.metadata_only": 2, "uploaders": 1}
    assert totals(o.expected(SNAP, C, day(1))) == {
        "total_records.metadata_only": 1, "total_parents.metadata_only": 1, "uploaders": 1}
    assert blocks(o.expected(ADDED, C, day(2))) == {
        "records.removed.metadata_only": 1, "parents.removed.metadata_only": 1}
    assert o.members(C, day(2)) == set()


def test_removed_then_deleted_counts_once_and_restore_skips_a_deleted_community():
    h = History()
    for r in ("r1", "r2"):
        h.publish(at(0, 1), r)
        h.add(at(0, 2), r, C)
    h.add(at(0, 3), "r2", K)
    h.remove(at(1, 5), "r1", C)
    h.delete(at(2, 5), "r1")           # already out of C: removed from global only (M3)
    h.delete_community(at(3), K)
    h.delete(at(4, 5), "r2")           # out of C, K and global
    h.restore(at(5, 5), "r2")          # back in C and global, not in the deleted K (M3)
    o = Oracle([rec("r1"), rec("r2")], h)
    removed = {"records.removed.metadata_only": 1, "parents.removed.metadata_only": 1}
    assert blocks(o.expected(ADDED, C, day(1))) == removed
    assert blocks(o.expected(ADDED, C, day(2))) == {}
    assert blocks(o.expected(ADDED, GLOBAL, day(2))) == removed
    assert blocks(o.expected(ADDED, K, day(3))) == {}  # deleting K changes no membership
    assert o.members(K, day(3)) == {"r2"}
    for c in (C, K, GLOBAL):
        assert blocks(o.expected(ADDED, c, day(4))) == removed
    assert blocks(o.expected(ADDED, C, day(5))) == {
        "records.added.metadata_only": 1, "parents.added.metadata_only": 1, "uploaders": 1}
    assert o.members(K, day(5)) == set() and o.members(C, day(5)) == {"r2"}
    assert o.members(GLOBAL, day(5)) == {"r2"}


def test_versions_move_with_their_parent():
    v1 = rec("v1", parent="P")
    v2 = rec("v2", parent="P", files=[("x.txt", 5)])
    v3 = rec("v3", parent="P")
    h = History()
    h.publish(at(0, 1), "v1")
    h.add(at(0, 2), "v1", C)
    h.publish(at(1, 1), "v2")                # joins C with its parent: a record, no parent (R4a)
    h.remove(at(2, 1), "v2", C)              # the parent leaves: both versions
    h.publish(at(3, 1), "v3")                # parent out of C: v3 joins global only
    h.add(at(4, 1), "v1", C)                 # the parent comes back with its three versions
    h.delete(at(5, 1), "v1")                 # a version deleted, the parent stays
    o = Oracle([v1, v2, v3], h)
    assert blocks(o.expected(ADDED, C, day(1))) == {
        "records.added.with_files": 1, "files.added.file_count": 1,
        "files.added.data_volume": 5.0, "uploaders": 1}
    assert totals(o.expected(SNAP, C, day(1))) == {
        "total_records.metadata_only": 1, "total_records.with_files": 1,
        "total_parents.metadata_only": 1, "total_parents.with_files": 1,
        "total_files.file_count": 1, "total_files.data_volume": 5.0, "uploaders": 1}
    assert blocks(o.expected(ADDED, C, day(2))) == {
        "records.removed.metadata_only": 1, "records.removed.with_files": 1,
        "parents.removed.metadata_only": 1, "parents.removed.with_files": 1,
        "files.removed.file_count": 1, "files.removed.data_volume": 5.0}
    assert blocks(o.expected(ADDED, C, day(3))) == {}
    assert blocks(o.expected(ADDED, GLOBAL, day(3))) == {"records.added.metadata_only": 1,
                                                        "uploaders": 1}
    assert blocks(o.expected(ADDED, C, day(4))) == {
        "records.added.metadata_only": 2, "records.added.with_files": 1,
        "parents.added.metadata_only": 1, "parents.added.with_files": 1,
        "files.added.file_count": 1, "files.added.data_volume": 5.0, "uploaders": 1}
    assert blocks(o.expected(ADDED, C, day(5))) == {"records.removed.metadata_only": 1}
    assert totals(o.expected(SNAP, C, day(5)))["total_parents.metadata_only"] == 1  # v3


def test_subcount_items_are_the_same_computation_over_their_records():
    people = {"creators": [{"affiliations": [{"id": "cern", "name": "CERN"},
                                             {"name": "no id"}]},
                           {"affiliations": [{"id": "cern", "name": "CERN"}]}],
              "contributors": [{"affiliations": [{"id": "cern", "name": "CERN"},
                                                 {"id": "brown", "name": "Brown"}]}]}
    r1 = rec("r1", files=[("a.pdf", 10), ("b.pdf", 1), ("c.csv", 7)], **people,
             languages=[{"id": "eng", "title": {"en": "English"}}],
             funding=[{"funder": {"id": "ec", "name": "European Commission"}}])
    r2 = rec("r2", owner="2", languages=[{"id": "eng", "title": {"en": "English"}},
                                         {"id": "fra", "title": {"en": "French"}}])
    h = History()
    for r in ("r1", "r2"):
        h.publish(at(0, 1), r)
        h.add(at(0, 2), r, C)
    o = Oracle([r1, r2], h)
    subs = o.expected(ADDED, C, day(0))["subcounts"]
    aff = {i["id"]: (i["label"], i["records"]["added"]) for i in subs["affiliations"]}
    assert aff == {"cern": ("CERN", {"metadata_only": 0, "with_files": 1}),   # once (S3)
                   "brown": ("Brown", {"metadata_only": 0, "with_files": 1})}
    ft = {i["id"]: i["files"]["added"] for i in subs["file_types"]}
    assert ft == {"pdf": {"file_count": 2, "data_volume": 11.0},              # S5
                  "csv": {"file_count": 1, "data_volume": 7.0}}
    lang = {i["id"]: (i["label"], i["records"]["added"]) for i in subs["languages"]}
    assert lang == {"eng": ({"en": "English"}, {"metadata_only": 1, "with_files": 1}),
                    "fra": ({"en": "French"}, {"metadata_only": 1, "with_files": 0})}
    assert [(i["id"], i["label"]) for i in subs["funders"]] == [("ec", "European Commission")]
    assert [(i["id"], i["label"]) for i in subs["access_statuses"]] == [
        ("metadata-only", "metadata-only"), ("open", "open")]
    snap = o.expected(SNAP, C, day(0))["subcounts"]
    assert [i["id"] for i in snap["languages"]] == ["eng", "fra"]


def test_top_lists_rank_by_count_then_id():
    langs = [{"id": i, "title": {"en": i}} for i in ("zzz", "aaa", "mmm")]
    recs = [rec("r1", languages=langs), rec("r2", languages=langs[:2]),
            rec("r3", languages=[langs[2]])]
    h = History()
    for r in recs:
        h.publish(at(0, 1), r.id)
        h.add(at(0, 2), r.id, C)
    o = Oracle(recs, h, top_limit=2)
    # counts: zzz 2, aaa 2, mmm 2 -> a tie everywhere: ids ascending (S6)
    assert [i["id"] for i in o.expected(SNAP, C, day(0))["subcounts"]["languages"]] == [
        "aaa", "mmm"]
    found = o.expected(SNAP, C, day(0))
    found["subcounts"]["languages"].reverse()
    assert compare(o, SNAP, C, day(0), found) == [
        ("subcounts.languages[order]", ["aaa", "mmm"], ["mmm", "aaa"])]


def test_created_and_published_bases():
    r1 = rec("r1", created=at(5, 10), published="2024-03-12")  # published before created (R5)
    r2 = rec("r2", created=at(6, 10), published="2023")          # EDTF year: 2023-01-01
    h = History()
    h.publish(at(5, 10), "r1")
    h.publish(at(6, 10), "r2")
    h.add(at(6, 11), "r1", C)
    h.add(at(6, 12), "r2", C)
    h.remove(at(9, 1), "r2", C)  # not in C now: gone from every day of C's R5 series
    o = Oracle([r1, r2], h)
    pub = "community-records-delta-published-agg"
    pub_snap = "community-records-snapshot-published-agg"
    assert blocks(o.expected(pub, C, day(2))) == {"records.added.metadata_only": 1,
                                                  "parents.added.metadata_only": 1,
                                                  "uploaders": 1}
    assert totals(o.expected(pub_snap, C, day(1))) == {}
    assert totals(o.expected(pub_snap, C, day(20)))["total_records.metadata_only"] == 1
    assert blocks(o.expected(pub, GLOBAL, date(2023, 1, 1)))["records.added.metadata_only"] == 1
    created = "community-records-delta-created-agg"
    assert blocks(o.expected(created, C, day(5)))["records.added.metadata_only"] == 1
    assert blocks(o.expected(created, C, day(6))) == {}
    assert blocks(o.expected(created, GLOBAL, day(6)))["records.added.metadata_only"] == 1


def test_usage_stamps_days_robots_and_sums():
    r1 = rec("r1", files=[("a.pdf", 100), ("b.csv", 5)])
    h = History()
    h.publish(at(0, 10), "r1")
    h.add(at(0, 10, millis=250), "r1", C)
    h.remove(at(1, 12, millis=300), "r1", C)
    events = [
        Event("view", at(0, 10, millis=100), "r1", "v1"),        # same second as the add (T3)
        Event("view", at(0, 9, 59, 59, 999), "r1", "v2"),        # before: not in C
        Event("view", at(1, 0), "r1", "v1"),                     # 00:00:00.000 of day 1
        Event("download", at(1, 23, 59, 59, 999), "r1", "v3", key="a.pdf", size=100),
        Event("download", at(1, 11), "r1", "v3", key="a.pdf", size=100),
        Event("download", at(1, 11, 30), "r1", "v4", key="b.csv", size=5),
        Event("view", at(1, 11), "r1", "bot", robot=True),       # U2
        Event("view", at(1, 12, millis=100), "r1", "v5"),        # removed in this second
    ]
    o = Usage_ = Oracle([r1], h, events).usage
    d0 = o.delta(C, day(0))["totals"]
    assert d0["view"] == {"total_events": 1, "unique_visitors": 1, "unique_records": 1,
                          "unique_parents": 1}
    assert o.delta(GLOBAL, day(0))["totals"]["view"]["total_events"] == 2
    d1 = o.delta(C, day(1))
    assert d1["totals"]["view"]["total_events"] == 1  # v1 at 00:00; v5 after the removal
    assert d1["totals"]["download"] == {"total_events": 2, "unique_visitors": 2,
                                        "unique_records": 1, "unique_parents": 1,
                                        "unique_files": 2, "total_volume": 105.0}
    g1 = o.delta(GLOBAL, day(1))
    assert g1["totals"]["download"]["total_events"] == 3
    assert g1["totals"]["view"]["total_events"] == 2
    ft = {i["id"]: (i["view"]["total_events"], i["download"]["total_events"])
          for i in g1["subcounts"]["file_types"]}
    assert ft == {"pdf": (2, 2), "csv": (2, 1)}  # a view under every extension (U5)
    snap = Usage_.snapshot(C, day(1))["totals"]
    assert snap["view"]["unique_visitors"] == 2  # visitor-days (U4)
    assert snap["download"]["total_volume"] == 105.0
    assert Usage_.snapshot(C, day(5))["totals"] == snap
    assert o.first_day(C) == day(0)


def test_diff_matches_items_by_id_and_numbers_by_value():
    exp = {"a": 1, "timestamp": "x", "subcounts": {"k": [{"id": "x", "n": 2.0},
                                                         {"id": "y", "n": 1}]}}
    found = {"a": 1.0, "timestamp": "y", "_snapshot": {},
             "subcounts": {"k": [{"id": "y", "n": 1}, {"id": "x", "n": 3}]}}
    assert diff(exp, found) == [("subcounts.k[x].n", 2.0, 3)]
    assert diff({"a": 1}, {"a": 1, "b": 2}) == [("b", "<missing>", 2)]
