# Part of invenio-stats-dashboard (MIT License).
"""Live and migrated stamps of one history agree, and equal an expectation (U1, M3, T3).

The history is driven through the real RDM services under time travel, with
membership changes inside the very seconds of some views. The same raw views
are then indexed twice: live (our indexer stamps them when they arrive) and
as a legacy month that the migration stamps. Expected communities are written
down here from the history, by hand.
"""

from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from invenio_access.permissions import system_identity
from invenio_communities.proxies import current_communities
from invenio_rdm_records.proxies import current_rdm_records_service
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index
from opensearchpy import helpers

from invenio_stats_dashboard.demo import rdm
from invenio_stats_dashboard.utils.usage_events import RecordTarget, index_events, view_event
from invenio_stats_dashboard.proxies import current_event_reindexing_service

from legacy_indices import index_legacy

#: A whole second, three months back: every change below is at BASE + hours + a fraction.
BASE = (datetime.now(timezone.utc) - timedelta(days=92)).replace(
    day=3, hour=10, minute=0, second=0, microsecond=0)
MONTH = BASE.strftime("%Y-%m")


def at(hours, millis=0):
    return BASE + timedelta(hours=hours, milliseconds=millis)


@pytest.fixture(scope="module")
def history(services, identities, communities, make_record):
    """Records whose memberships change at chosen instants (see the expectations below)."""
    owner = identities["owner"]
    alpha = communities["alpha"].id
    with time_machine.travel(at(0, 250), tick=False):
        # published and added to alpha in the same second as its first view
        p = make_record(community_id=alpha)
        q = make_record(community_id=alpha)
        s = make_record()
        r = make_record(community_id=alpha)
        gamma = rdm.create_community(owner, f"{alpha[:8]}-gamma", "Gamma").id
    with time_machine.travel(at(0, 600), tick=False):
        # bulk path: no inclusion request (12 leaves one open, which blocks the deletion)
        rdm.bulk_add(gamma, [r.id])
    with time_machine.travel(at(1, 300), tick=False):
        rdm.remove_from_community(owner, q.id, alpha)  # in the second of a view
    with time_machine.travel(at(2, 400), tick=False):
        rdm.add_to_community(owner, s.id, alpha)  # in the second of a view
    with time_machine.travel(at(3), tick=False):
        current_communities.service.delete(system_identity, gamma, data={
            "removal_reason": {"id": "spam"}, "is_visible": False})
    with time_machine.travel(at(4), tick=False):
        rdm.delete_record(r.id)
    with time_machine.travel(at(5), tick=False):
        rdm.restore_record(r.id)
    resolve = current_rdm_records_service.record_cls.pid.resolve
    targets = {k: RecordTarget.from_record(resolve(v.id)) for k, v in
               {"p": p, "q": q, "s": s, "r": r}.items()}
    return {"targets": targets, "alpha": alpha, "gamma": gamma}


def expectations(history):
    """(record, view instant, communities) written down from the history above."""
    a, g = history["alpha"], history["gamma"]
    return [
        ("p", at(0), [a]),          # T3: added at .250 of the view's second
        ("p", at(0, -1000), []),    # the second before: not yet published/added
        ("q", at(1), []),           # removed at .300 of the view's second
        ("q", at(0, 30_000), [a]),
        ("s", at(2), [a]),          # added at .400 of the view's second
        ("s", at(1, 59_000), []),
        ("r", at(2), sorted([a, g])),
        ("r", at(4, 30_000), []),   # deleted
        ("r", at(5, 10_000), [a]),  # restored: not to gamma, deleted meanwhile (M3)
    ]


def planned_views(history):
    views = []
    for n, (key, when, _) in enumerate(expectations(history)):
        views.append(view_event(history["targets"][key], when, f"stamp-{n}"))
    return {"record-view": views, "file-download": []}


def stamps(index):
    current_search_client.indices.refresh(index=index)
    return {(h["_source"]["recid"], h["_source"]["timestamp"]): sorted(h["_source"]["community_ids"])
            for h in helpers.scan(current_search_client, index=index,
                                  query={"query": {"match_all": {}}})}


def expected_stamps(history):
    return {(history["targets"][key].recid, when.strftime("%Y-%m-%dT%H:%M:%S")): communities
            for key, when, communities in expectations(history)}


def test_live_and_migrated_stamps_agree_with_the_history(services, history):
    index = prefix_index(f"events-stats-record-view-{MONTH}")
    expected = expected_stamps(history)
    assert len(expected) == len(expectations(history))

    # Live: the month's index is created by our indexer; stamps come from the log.
    index_events(planned_views(history))
    live = stamps(index)
    assert live == expected

    # Migrated: the same raw events as a legacy (stock-mapped) month, then migrated.
    current_search_client.indices.delete(index=index)
    index_legacy(planned_views(history))
    report = current_event_reindexing_service.reindex_events(event_types=["view"],
                                                             month_filter=MONTH)
    assert report["completed"], report
    migrated = stamps(f"{index}-v2.0.0")
    assert migrated == expected
    assert migrated == live


def test_builders_alone_would_stamp_the_deleted_community(history):
    """Why the indexer stamps from the log: RDM keeps the deleted community on the parent."""
    record = current_rdm_records_service.record_cls.pid.resolve(history["targets"]["r"].recid)
    assert history["gamma"] in record.parent.communities.ids
