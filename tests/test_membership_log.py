# Part of invenio-stats-dashboard (MIT License).
"""The membership log's readers: scope ``global``, activity filter, refreshes, no-op documents."""

from contextlib import contextmanager
from datetime import datetime, timezone

import arrow
import time_machine
from invenio_search.engine import search
from invenio_search.proxies import current_search_client

from invenio_stats_dashboard.cli import cli
from invenio_stats_dashboard.demo import rdm
from invenio_stats_dashboard.services import events_log as log
from invenio_stats_dashboard.services.community_events import CommunityRecordEventsService

from oracles import wipe_log

G = "global"


def run(app, *args):
    result = app.test_cli_runner().invoke(cli, ["community-events", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def documents(record_ids, refresh=True):
    if refresh:
        log.refresh()
    hits = search.helpers.scan(current_search_client, index=log.alias_name(), query={
        "query": {"terms": {"record_id": list(record_ids)}}})
    return sorted((h["_source"]["record_id"], h["_source"]["community_id"],
                   h["_source"]["event_type"]) for h in hits)


@contextmanager
def refresh_interval(value):
    """Set the log indices' refresh interval (``-1``: only explicit refreshes)."""
    log.refresh()
    indices = ",".join(current_search_client.indices.get_alias(name=log.alias_name()))
    current_search_client.indices.put_settings(index=indices,
                                               body={"index.refresh_interval": value})
    try:
        yield
    finally:
        current_search_client.indices.put_settings(index=indices,
                                                   body={"index.refresh_interval": "5s"})


def test_generate_for_global_writes_global_pairs_only(services, make_record, communities):
    alpha = communities["alpha"].id
    made = [make_record(community_id=alpha) for _ in range(2)]
    ids = [r.id for r in made]
    wipe_log({"terms": {"record_id": ids}})
    output = run(services, "generate", "--no-show-progress", "--community-id", "global")
    assert "New events created" in output
    assert documents(ids) == sorted((r, G, "added") for r in ids)
    status = run(services, "status", "--community-id", "global")
    rows = [line.split() for line in status.splitlines() if "] " in line]
    assert [row[0] for row in rows] == ["global"]
    assert "Records missing events:  0" in status


def test_activity_filter_pages_every_community_and_counts_records(services):
    """More than 10,000 communities (hand-written: the services cannot make that many)."""
    many = [f"act-{n:05d}" for n in range(10_050)]
    actions = [log.make_event(f"act-rec-{n % 7}", c, "added", "2022-01-01T00:00:00+00:00")
               for n, c in enumerate(many)]
    # One record added, removed and added again: 3 documents, 1 record.
    actions += [log.make_event("act-one", "act-busy", t, f"2022-02-0{d}T00:00:00+00:00")
                for d, t in ((1, "added"), (2, "removed"), (3, "added"))]
    # Two records, one document each.
    actions += [log.make_event(r, "act-pair", "added", "2022-02-01T00:00:00+00:00")
                for r in ("act-r1", "act-r2")]
    log.write(actions)
    try:
        service = CommunityRecordEventsService()
        found = set(service.filter_communities_by_activity())
        assert set(many) | {"act-busy", "act-pair"} <= found and G not in found
        two = set(service.filter_communities_by_activity(record_threshold=2))
        assert "act-pair" in two and "act-busy" not in two and not two & set(many)
    finally:
        wipe_log({"prefix": {"community_id": "act-"}})


def test_live_writes_do_not_refresh_but_live_reads_see_them(services, make_record,
                                                            identities, communities):
    """A live write leaves refreshing to the reader that needs it (the next live
    change, ``generate``, ``status``), so the user's request never waits for it."""
    alpha = communities["alpha"].id
    make_record()  # the current year's log index exists
    with refresh_interval("-1"):
        record = make_record()
        assert documents([record.id], refresh=False) == []  # written, not refreshed
        rdm.add_to_community(identities["owner"], record.id, alpha)
        rdm.remove_from_community(identities["owner"], record.id, alpha)
        status = run(services, "status", "--record-ids", record.id)
        assert "Records missing events:  0" in status
        assert documents([record.id]) == sorted([
            (record.id, G, "added"), (record.id, alpha, "added"),
            (record.id, alpha, "removed")])


def test_a_change_right_after_another_process_write_is_recorded(services, make_record,
                                                                 identities):
    """Writes do not refresh; the next live reconcile refreshes before it reads.

    Otherwise a process that did not write (another web worker) reads a log
    without the change just made elsewhere and records nothing for good.
    """
    owner = identities["owner"]
    T = [datetime(2022, 4, d, 9, tzinfo=timezone.utc) for d in (1, 2, 3)]
    with time_machine.travel(T[0], tick=False):
        gamma = rdm.create_community(owner, f"seq-{id(T) % 10**6}", "Gamma").id
        record = make_record()
    with refresh_interval("-1"):  # nothing becomes visible unless refreshed
        with time_machine.travel(T[1], tick=False):
            rdm.bulk_add(gamma, [record.id])
        with time_machine.travel(T[2], tick=False):
            rdm.remove_from_community(owner, record.id, gamma)
    log.refresh()  # the removal's own write, as any reader after a write does
    steps = list(log.iter_transitions([record.id], community_ids=[gamma]))
    assert [(s.event_type, arrow.get(s.event_date).datetime) for s in steps] == [
        ("added", T[1]), ("removed", T[2])]


def test_duplicate_additions_change_no_count(services, make_record, identities):
    """Two post-commit writes that read before either wrote both record a bulk add.

    Such a race cannot be made to happen on demand through the services, so
    the second writer's document — exactly what it writes — is added by hand.
    """
    owner = identities["owner"]
    T = [datetime(2022, 5, d, 9, tzinfo=timezone.utc) for d in (1, 2, 3)]
    with time_machine.travel(T[0], tick=False):
        gamma = rdm.create_community(owner, f"dup-{T[0]:%H%M%S}-{id(T) % 10**6}", "Gamma").id
        record = make_record()
    with time_machine.travel(T[1], tick=False):
        rdm.bulk_add(gamma, [record.id])
    with time_machine.travel(T[2], tick=False):  # the racing writer, a moment later
        log.write([log.make_event(record.id, gamma, "added", T[2])], refresh=True)
    docs = [d for d in documents([record.id]) if d[1] == gamma]
    assert docs == [(record.id, gamma, "added")] * 2  # a duplicate exists ...
    steps = list(log.iter_transitions([record.id], community_ids=[gamma]))
    assert [(s.event_type, arrow.get(s.event_date).datetime) for s in steps] == [
        ("added", T[1])]  # ... and is no transition
    assert log.latest_states([record.id])[(record.id, gamma)].event_type == "added"
    service = CommunityRecordEventsService()
    assert gamma not in service.filter_communities_by_activity(record_threshold=2)
    assert gamma in service.filter_communities_by_activity(record_threshold=1)
    whole = [s for s in log.iter_transitions(community_ids=[gamma])]
    assert [(s.record_id, s.event_type) for s in whole] == [(record.id, "added")]
    status = run(services, "status", "--record-ids", record.id)
    assert "Records missing events:  0" in status


def test_no_op_documents_count_for_nothing(services):
    """The invariant on the log as it may be (duplicates, a lone ``removed`` first,
    documents from other writers) — hand-written: the services produce these only
    in races."""
    day = "2022-06-0{}T00:00:00+00:00"
    docs = [("nop-a", "nop-c1", "added", 1), ("nop-a", "nop-c1", "added", 2),
            ("nop-a", "nop-c1", "removed", 3), ("nop-a", "nop-c1", "removed", 4),
            ("nop-a", "nop-c1", "added", 5),
            ("nop-b", "nop-c1", "removed", 1), ("nop-b", "nop-c1", "added", 2),
            ("nop-c", "nop-c2", "added", 1), ("nop-c", "nop-c2", "added", 3)]
    log.write([log.make_event(r, c, t, day.format(d)) for r, c, t, d in docs])
    try:
        log.refresh()
        service = CommunityRecordEventsService()
        assert "nop-c1" in service.filter_communities_by_activity(record_threshold=2)
        assert "nop-c2" not in service.filter_communities_by_activity(record_threshold=2)
        found = [(s.record_id, s.community_id, s.event_type, arrow.get(s.event_date).day)
                 for s in log.iter_transitions(["nop-a", "nop-b", "nop-c"])]
        assert found == [("nop-a", "nop-c1", "added", 1), ("nop-a", "nop-c1", "removed", 3),
                         ("nop-a", "nop-c1", "added", 5), ("nop-b", "nop-c1", "added", 2),
                         ("nop-c", "nop-c2", "added", 1)]
    finally:
        wipe_log({"prefix": {"record_id": "nop-"}})


def test_a_version_published_while_its_parent_was_out_gets_no_stay_there(
        services, make_record, identities, communities):
    """M5: v1 in alpha, removed; v2 published while out; the parent added back.

    v2's only change in alpha is the re-addition — written live, and again when
    ``generate`` rebuilds v2's lost pair (the database alone would date the first
    stay's end 1 ms before the re-addition and invent a stay of v2 there).
    """
    alpha, owner = communities["alpha"].id, identities["owner"]
    t = [datetime(2025, 3, 3, hour, tzinfo=timezone.utc) for hour in (9, 10, 11, 12)]
    with time_machine.travel(t[0], tick=False):
        v1 = make_record(community_id=alpha)
    with time_machine.travel(t[1], tick=False):
        rdm.remove_from_community(owner, v1.id, alpha)
    with time_machine.travel(t[2], tick=False):
        v2 = rdm.new_version(owner, v1.id, publication_date="2025-03-03")
    with time_machine.travel(t[3], tick=False):
        rdm.add_to_community(owner, v1.id, alpha)

    def alpha_transitions():
        log.refresh()
        return [(s.record_id, s.event_type, arrow.get(s.event_date).datetime)
                for s in log.iter_transitions([v1.id, v2.id], community_ids=[alpha])]

    expected = sorted([(v1.id, "added", t[0]), (v1.id, "removed", t[1]), (v1.id, "added", t[3]),
                       (v2.id, "added", t[3])])
    assert sorted(alpha_transitions()) == expected
    wipe_log({"bool": {"filter": [{"term": {"record_id": v2.id}},
                                  {"term": {"community_id": alpha}}]}})
    run(services, "generate", "--no-show-progress", "--community-id", alpha)
    assert sorted(alpha_transitions()) == expected
