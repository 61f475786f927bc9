# Part of invenio-stats-dashboard (MIT License).
"""Volume acceptance: 10,050 records join one community on one day, 10,000+ events hit it
on the next; every count exact (issue 11, G1, G9, G10).

Creating 10,050 records through the RDM services would take hours, so this
is the one place where records-index and membership-log documents are
written by hand: each record is a copy of a real record's index document
(published through the services first, with a file), given its own id,
parent, owner, file and publisher, and each membership change is the
document ``events_log.make_event`` writes for it. The usage events are raw
stock events, put through the configured indexer (preprocessors, ids) without
the Redis queue into a legacy month, then migrated by ``reindex_events``
(which enriches them from those records and stamps them from that log). The
expected documents come from ``agg_oracle`` over the same inputs.
"""

import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from invenio_search.engine import search
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index
from invenio_stats.proxies import current_stats
from invenio_stats.utils import get_geoip

from invenio_stats_dashboard.utils.usage_events import PUBLIC_IPS, RecordTarget, view_event
from invenio_stats_dashboard.utils.usage_events import download_event
from invenio_stats_dashboard.proxies import current_event_reindexing_service
from invenio_stats_dashboard.services import events_log

from agg_common import calendar, travel
from agg_history import enable_dashboard, resolve
from agg_compare import compare
from agg_oracle import GLOBAL, Event, History, Oracle, Record, days
from legacy_indices import create_stock_months
from agg_run import aggregate, engine, read_all, report, required_from

RECORDS, PARENTS, PUBLISHERS = 10_050, 10_000, 1_200
VIEWS, DOWNLOADS, VISITORS = 10_200, 600, 2_100
V = (datetime.now(timezone.utc).date().replace(day=1) - timedelta(days=150)).replace(day=10)
_, at = calendar(V)  # at(n, hours, ..., millis): an instant on day V + n


def clone(template, n):
    """Record ``n``: the real record's index document with its own identity and file.

    Shallow copies: the unchanged parts are shared (they are only serialised).
    """
    parent = n % PARENTS  # parents 0..49 get a second version, of the other files class
    with_files = (n % 2 == 0) == (n < PARENTS)
    created = at(0, 8, millis=n).isoformat()
    src = dict(template, id=f"vol{n:05d}-rec", uuid=str(uuid.uuid4()), created=created,
               updated=created)
    src["parent"] = dict(template["parent"], id=f"vol{parent:05d}-par", uuid=str(uuid.uuid4()))
    src["parent"]["access"] = dict(template["parent"]["access"],
                                   owned_by={"user": 1 + parent % 3})
    src["metadata"] = dict(template["metadata"], publisher=f"Press {n % PUBLISHERS:04d}",
                           title=f"Volume record {n}")
    entry = dict(template["files"]["entries"][0], key=f"f{n}.dat", size=n + 1,
                 uuid=str(uuid.uuid4()), file_id=str(uuid.uuid4()),
                 object_version_id=str(uuid.uuid4()))
    src["files"] = ({"enabled": True, "count": 1, "totalbytes": n + 1, "types": ["dat"],
                     "mimetypes": [entry["mimetype"]], "entries": [entry]} if with_files else
                    {"enabled": False, "count": 0, "totalbytes": 0, "types": [],
                     "mimetypes": [], "entries": []})
    src["access"] = dict(template["access"], status="open" if with_files else "metadata-only")
    return src


@pytest.fixture(scope="module")
def volume(services, make_record, communities):
    a = communities["alpha"].id
    enable_dashboard(a)
    history = History()
    with travel(at(-1, 10)):
        real = make_record(community_id=a, files={"tmpl.dat": b"0123456789"},
                           languages=["eng"], publisher="Template Press")
    history.publish(at(-1, 10), real.id)
    history.add(at(-1, 10), real.id, a)
    hit = current_search_client.search(index=prefix_index("rdmrecords-records"), body={
        "query": {"term": {"id": real.id}}})["hits"]["hits"][0]
    docs = [clone(hit["_source"], n) for n in range(RECORDS)]
    actions = []
    for n, src in enumerate(docs):
        created, added = src["created"], at(0, 12, millis=n)
        actions.append({"_op_type": "index", "_index": hit["_index"], "_id": src["uuid"],
                        "_source": src})
        published = src["metadata"]["publication_date"]
        actions.append(events_log.make_event(src["id"], GLOBAL, "added", created, created,
                                             published))
        actions.append(events_log.make_event(src["id"], a, "added", added, created, published))
        history.publish(created, src["id"])
        history.add(added, src["id"], a)
    ok, errors = search.helpers.bulk(current_search_client, actions, chunk_size=2000,
                                     raise_on_error=False)
    assert not errors and ok == len(actions)
    current_search_client.indices.refresh(index=prefix_index("rdmrecords-records"))
    events_log.refresh()

    records = [Record.from_json(resolve(real.id).dumps())] + [Record.from_json(s) for s in docs]
    planned, raw = plan_usage(docs[:20])
    index_legacy_month(raw)
    # the stock month deleted once migrated (--delete-old-indices): this module is about
    # volume; the default (stock month kept) is exercised by test_aggregations_oracle
    result = current_event_reindexing_service.reindex_events(delete_old_indices=True)
    assert result["completed"], result
    oracle = Oracle(records, history, planned)
    return {"oracle": oracle, "a": a, "names": {a: "alpha", GLOBAL: "global"}}


def plan_usage(docs):
    """10,200 views and 600 downloads on day 1 by 2,100 visitors (no double clicks)."""
    rng = random.Random(11)
    targets = []
    for src in docs:
        target = RecordTarget(src["id"], src["parent"]["id"], at(0))
        target.files = [{"bucket_id": str(uuid.uuid4()), "file_id": e["file_id"],
                         "key": e["key"], "size": e["size"]} for e in src["files"]["entries"]]
        targets.append(target)
    planned, raw = [], {"record-view": [], "file-download": []}
    for n in range(VIEWS + DOWNLOADS):
        visitor = f"vis-{n % VISITORS}"
        # each visitor's events are 10 minutes apart: never merged as double clicks
        when = at(1, millis=(n // VISITORS) * 600_000 + (n % VISITORS) * 17 + rng.randrange(5))
        ip = PUBLIC_IPS[n % len(PUBLIC_IPS)]
        if n < VIEWS:
            target = targets[n % len(targets)]
            raw["record-view"].append(view_event(target, when, visitor, ip_address=ip))
            planned.append(Event("view", when, target.recid, visitor, country=get_geoip(ip)))
        else:
            target = [t for t in targets if t.files][n % 10]
            file = target.files[0]
            raw["file-download"].append(download_event(target, when, file, visitor,
                                                       ip_address=ip))
            planned.append(Event("download", when, target.recid, visitor, key=file["key"],
                                 size=file["size"], country=get_geoip(ip)))
    return planned, raw


class ListQueue:
    """The planned events in place of invenio-stats' Redis queue (same indexer, no broker)."""

    def __init__(self, routing_key, events):
        self.routing_key, self.events = routing_key, events

    def consume(self):
        for event in self.events:
            yield dict(event)

    def publish(self, events):
        raise AssertionError(f"the indexer requeued {len(events)} events")


def index_legacy_month(raw):
    """Raw events through the configured indexer into stock-mapped (legacy) months."""
    months = sorted({e["timestamp"][:7] for events in raw.values() for e in events})
    for stem, events in raw.items():
        create_stock_months(months, [stem])
        entry = current_stats.events[stem]
        indexer = entry.cls(**{**entry.params,
                               "queue": ListQueue(entry.queue.routing_key, events)})
        indexed, failed = indexer.run()
        assert (indexed, failed) == (len(events), 0)
    current_search_client.indices.refresh(index=prefix_index("events-stats-*"))


@engine
def test_ten_thousand_records_and_events_counted_exactly(volume):
    """Every document of the eight series for alpha and ``global``, field by field."""
    aggregate(V - timedelta(days=1), V + timedelta(days=2))
    oracle, names = volume["oracle"], volume["names"]
    found, lines = read_all(), []
    for series, docs in found.items():
        for d in days(V - timedelta(days=1), V + timedelta(days=2)):
            for community in names:
                doc = docs.get((community, d))
                if doc is None and d >= required_from(oracle, series, community):
                    lines.append(f"{series} {names[community]} {d}: no document")
                if doc is None:
                    continue
                lines += [f"{series} {names[community]} {d} {path}: expected {e!r}, found {f!r}"
                          for path, e, f in compare(oracle, series, community, d, doc)]
    assert not lines, report(lines)
    # the numbers the volume is about, spelled out
    delta = found["community-records-delta-added-agg"][(volume["a"], V)]
    assert delta["records"]["added"] == {"metadata_only": 5025, "with_files": 5025}
    assert delta["parents"]["added"] == {"metadata_only": 5025, "with_files": 5025}  # R4a
    assert len(delta["subcounts"]["publishers"]) == PUBLISHERS
    usage = found["community-usage-delta-agg"][(volume["a"], V + timedelta(days=1))]
    assert usage["totals"]["view"]["total_events"] == VIEWS
    assert usage["totals"]["download"]["total_events"] == DOWNLOADS
    assert usage["totals"]["view"]["unique_visitors"] == VISITORS


def test_the_inputs_are_what_was_planned(volume):
    """Not the aggregation: the hand-written log and the migrated month hold the planned inputs."""
    a = volume["a"]
    events_log.refresh()
    count = current_search_client.count(index=events_log.alias_name(), body={
        "query": {"term": {"community_id": a}}})["count"]
    assert count == RECORDS + 1
    for stem, expected in (("record-view", VIEWS), ("file-download", DOWNLOADS)):
        alias = prefix_index(f"events-stats-{stem}")
        current_search_client.indices.refresh(index=alias)
        assert current_search_client.count(index=alias, body={
            "query": {"term": {"community_ids": a}}})["count"] == expected
