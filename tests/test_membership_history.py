# Part of invenio-stats-dashboard (MIT License).
"""Membership history: lost writes repaired, one dating rule, history before installation.

Histories are driven through the RDM services under time travel (frozen
clocks), so every change happens at an instant chosen here; the expected log
is written down from those instants and counting rules M1–M5 (and, where the
database cannot date a change, from the documented estimate: the parent's
last update), never read back from the code.
"""

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import arrow
import pytest
import time_machine
from invenio_access.permissions import system_identity
from invenio_requests.proxies import current_requests_service
from invenio_search.engine import search
from invenio_search.proxies import current_search_client

from invenio_stats_dashboard.cli import cli
from invenio_stats_dashboard.demo import rdm
from invenio_stats_dashboard.services import events_log as log

from oracles import wipe_log

G, ADDED, REMOVED = "global", "added", "removed"
T = [datetime(2021, 3, day, 10, 0, tzinfo=timezone.utc) for day in range(1, 12)]
MS = timedelta(milliseconds=1)


@contextmanager
def travel(when):
    """Freeze every clock (Python, hence the database rows and log documents) at ``when``."""
    with time_machine.travel(when, tick=False):
        yield


@contextmanager
def lost_writes(app):
    """The log refuses writes for a while, as when OpenSearch fails after a commit.

    Production mode (``TESTING`` off): the post-commit operation logs the
    failure and the user's change stands.
    """
    indices = ",".join(current_search_client.indices.get_alias(name=log.alias_name()))
    current_search_client.indices.put_settings(index=indices,
                                               body={"index.blocks.write": True})
    app.config["TESTING"] = False
    try:
        yield
    finally:
        app.config["TESTING"] = True
        current_search_client.indices.put_settings(index=indices,
                                                   body={"index.blocks.write": None})


def documents(record_ids):
    """``[(record, community, type, event_date)]`` of every log document, sorted."""
    log.refresh()
    hits = search.helpers.scan(current_search_client, index=log.alias_name(), query={
        "query": {"terms": {"record_id": list(record_ids)}}})
    return sorted((h["_source"]["record_id"], h["_source"]["community_id"],
                   h["_source"]["event_type"], arrow.get(h["_source"]["event_date"]).datetime)
                  for h in hits)


def run(app, *args):
    result = app.test_cli_runner().invoke(cli, ["community-events", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def generate(app, record_ids):
    return run(app, "generate", "--no-show-progress",
               *[a for r in record_ids for a in ("--record-ids", r)])


@pytest.fixture(scope="module")
def ctx(services, make_record, identities, communities):
    class Ctx:
        app = services
        make = staticmethod(make_record)
        owner, depositor = identities["owner"], identities["depositor"]
        alpha, beta = communities["alpha"].id, communities["beta"].id
    Ctx.communities = communities
    return Ctx


# --- 1. every kind of lost write is repaired by `generate` -------------------

def lost_addition(c):
    with travel(T[0]):
        r = c.make(identity=c.depositor)
    with travel(T[1]):
        request = rdm.add_to_community(c.depositor, r.id, c.alpha, require_review=True)[0]
    with travel(T[2]), lost_writes(c.app):
        rdm.accept_request(c.owner, request)
    return [r.id], [(r.id, G, ADDED, T[0]), (r.id, c.alpha, ADDED, T[2])]


def lost_removal(c):
    with travel(T[0]):
        r = c.make()
    with travel(T[1]):
        rdm.add_to_community(c.owner, r.id, c.alpha)
    with travel(T[2]), lost_writes(c.app):
        rdm.remove_from_community(c.owner, r.id, c.alpha)
    # Undated by the database: the parent's last update, here the removal itself.
    return [r.id], [(r.id, G, ADDED, T[0]), (r.id, c.alpha, ADDED, T[1]),
                    (r.id, c.alpha, REMOVED, T[2])]


def lost_deletion(c):
    with travel(T[0]):
        r = c.make()
    with travel(T[1]):
        rdm.add_to_community(c.owner, r.id, c.alpha)
    with travel(T[2]), lost_writes(c.app):
        rdm.delete_record(r.id)
    return [r.id], [(r.id, G, ADDED, T[0]), (r.id, G, REMOVED, T[2]),
                    (r.id, c.alpha, ADDED, T[1]), (r.id, c.alpha, REMOVED, T[2])]


def lost_restoration(c):
    with travel(T[0]):
        r = c.make()
    with travel(T[1]):
        rdm.add_to_community(c.owner, r.id, c.alpha)
    with travel(T[2]):
        rdm.delete_record(r.id)
    with travel(T[3]), lost_writes(c.app):
        rdm.restore_record(r.id)
    return [r.id], [(r.id, G, ADDED, T[0]), (r.id, G, REMOVED, T[2]), (r.id, G, ADDED, T[3]),
                    (r.id, c.alpha, ADDED, T[1]), (r.id, c.alpha, REMOVED, T[2]),
                    (r.id, c.alpha, ADDED, T[3])]


def lost_readdition(c):
    with travel(T[0]):
        r = c.make()
    with travel(T[1]):
        rdm.add_to_community(c.owner, r.id, c.alpha)
    with travel(T[2]):
        rdm.remove_from_community(c.owner, r.id, c.alpha)
    with travel(T[3]), lost_writes(c.app):
        rdm.add_to_community(c.owner, r.id, c.alpha)
    return [r.id], [(r.id, G, ADDED, T[0]), (r.id, c.alpha, ADDED, T[1]),
                    (r.id, c.alpha, REMOVED, T[2]), (r.id, c.alpha, ADDED, T[3])]


def lost_new_version(c):
    with travel(T[0]):
        v1 = c.make()
    with travel(T[1]):
        rdm.add_to_community(c.owner, v1.id, c.alpha)
    with travel(T[2]), lost_writes(c.app):
        v2 = rdm.new_version(c.owner, v1.id, publication_date="2021-03-03")
    return [v1.id, v2.id], [(v1.id, G, ADDED, T[0]), (v1.id, c.alpha, ADDED, T[1]),
                            (v2.id, G, ADDED, T[2]), (v2.id, c.alpha, ADDED, T[2])]


def lost_bulk_addition(c):
    with travel(T[0]):
        r = c.make()
    with travel(T[1]), lost_writes(c.app):
        rdm.bulk_add(c.beta, [r.id])
    return [r.id], [(r.id, G, ADDED, T[0]), (r.id, c.beta, ADDED, T[1])]


LOST = [lost_addition, lost_removal, lost_deletion, lost_restoration, lost_readdition,
        lost_new_version, lost_bulk_addition]


@pytest.mark.parametrize("scenario", LOST, ids=[f.__name__ for f in LOST])
def test_generate_repairs_a_lost_write(ctx, scenario):
    record_ids, expected = scenario(ctx)
    assert documents(record_ids) != sorted(expected)  # the write was lost
    output = generate(ctx.app, record_ids)
    assert "New events created" in output
    assert documents(record_ids) == sorted(expected)
    assert "All records already have the required community events!" in generate(
        ctx.app, record_ids)


def test_repaired_deletion_flags_every_document(ctx):
    (record_id,), _ = lost_deletion(ctx)
    generate(ctx.app, [record_id])
    log.refresh()
    docs = [h["_source"] for h in search.helpers.scan(
        current_search_client, index=log.alias_name(),
        query={"query": {"term": {"record_id": record_id}}})]
    assert docs and all(d["is_deleted"] for d in docs)
    assert {arrow.get(d["deleted_date"]).datetime for d in docs} == {T[2]}


# --- 2. one dating rule for history before installation ----------------------

def test_live_and_backfill_date_history_before_installation_alike(ctx):
    """An inclusion accepted at T2 counts from T2 — not from the version's creation
    (old live path) nor from the request's last edit (old backfill)."""
    with travel(T[0]):
        r = ctx.make(identity=ctx.depositor)
    with travel(T[1]):
        request = rdm.add_to_community(ctx.depositor, r.id, ctx.alpha, require_review=True)[0]
    with travel(T[2]):
        rdm.accept_request(ctx.owner, request)
    with travel(T[3]):  # the request is edited later: its row's `updated` moves
        current_requests_service.update(system_identity, request, {"title": "Renamed"})
    before_install = [(r.id, G, ADDED, T[0]), (r.id, ctx.alpha, ADDED, T[2])]

    wipe_log({"term": {"record_id": r.id}})  # the package is installed now
    generate(ctx.app, [r.id])
    assert documents([r.id]) == sorted(before_install)

    wipe_log({"term": {"record_id": r.id}})
    with travel(T[4]):  # a live change meets the same unseen history
        rdm.add_to_community(ctx.owner, r.id, ctx.beta)
    assert documents([r.id]) == sorted(before_install + [(r.id, ctx.beta, ADDED, T[4])])


# --- 3. history from before installation, best effort -----------------------

def test_history_before_installation(ctx):
    # Left a community before installation; its accepted request remains.
    with travel(T[0]):
        left = ctx.make(identity=ctx.depositor)
    with travel(T[1]):
        request = rdm.add_to_community(ctx.depositor, left.id, ctx.alpha, require_review=True)[0]
    with travel(T[2]):
        rdm.accept_request(ctx.owner, request)
    with travel(T[3]):  # the parent's last update: the removal is dated here
        rdm.remove_from_community(ctx.owner, left.id, ctx.alpha)
    # Added in bulk, without a request: dated at the parent's last update.
    with travel(T[0]):
        bulk = ctx.make()
    with travel(T[4]):
        rdm.bulk_add(ctx.beta, [bulk.id])
    # Left, then included again: the removal (truly at T5) can only be placed
    # before the next acceptance (T8 - 1 ms), the latest instant the database allows.
    with travel(T[0]):
        back = ctx.make(identity=ctx.depositor)
    for asked, accepted in ((T[1], T[2]), (T[6], T[7])):
        if asked == T[6]:
            with travel(T[5]):
                rdm.remove_from_community(ctx.owner, back.id, ctx.alpha)
        with travel(asked):
            request = rdm.add_to_community(ctx.depositor, back.id, ctx.alpha,
                                           require_review=True)[0]
        with travel(accepted):
            rdm.accept_request(ctx.owner, request)
    ids = [left.id, bulk.id, back.id]
    wipe_log({"terms": {"record_id": ids}})  # the package is installed now

    output = generate(ctx.app, ids)
    assert "Pairs with estimated dates: 3" in output
    assert documents(ids) == sorted([
        (left.id, G, ADDED, T[0]), (left.id, ctx.alpha, ADDED, T[2]),
        (left.id, ctx.alpha, REMOVED, T[3]),
        (bulk.id, G, ADDED, T[0]), (bulk.id, ctx.beta, ADDED, T[4]),
        (back.id, G, ADDED, T[0]), (back.id, ctx.alpha, ADDED, T[2]),
        (back.id, ctx.alpha, REMOVED, T[7] - MS), (back.id, ctx.alpha, ADDED, T[7]),
    ])
    status = run(ctx.app, "status", *[a for r in ids for a in ("--record-ids", r)])
    assert "Approximated pairs:      3" in status
    assert "Records missing events:  0" in status
    # community  records (in it now)  events  missing  approx.
    rows = {line.split()[0]: line.split() for line in status.splitlines() if "] " in line}
    alpha, beta = (ctx.communities[n].data["slug"] for n in ("alpha", "beta"))
    assert (rows[alpha][1], rows[alpha][3], rows[alpha][4]) == ("1", "0", "2")
    assert (rows[beta][1], rows[beta][3], rows[beta][4]) == ("1", "0", "1")
    assert (rows["global"][1], rows["global"][3], rows["global"][4]) == ("3", "0", "0")
