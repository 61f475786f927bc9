# Part of invenio-stats-dashboard (MIT License).
"""Usage deltas (``community-usage-delta-agg``): U1–U5, T1, S1–S7, G9–G14.

The history is real: records made through the RDM services under time
travel, then views and downloads at chosen instants through invenio-stats'
queue and our live indexer (stamps from the membership log). The expected
documents are computed below from the planned events and the records'
metadata as written in this module — never from the code under test.

The 10,000-event day is synthetic: enriched events bulk-indexed into an
enriched month (pushing 10,000 events through the queue would only test the
queue, slowly). Its expected figures come from the generator's formulas.
"""

from collections import defaultdict
from datetime import datetime, time, timedelta, timezone

import pytest
import time_machine
from invenio_rdm_records.proxies import current_rdm_records_service
from invenio_search.engine import search as search_engine
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from invenio_stats_dashboard.aggregations import runner, usage
from invenio_stats_dashboard.aggregations.engine import Context
from invenio_stats_dashboard.aggregations.runner import aggregate
from invenio_stats_dashboard.aggregations.series import get as get_series
from invenio_stats_dashboard.demo import rdm
from invenio_stats_dashboard.search_indices.names import META_KEY
from invenio_stats_dashboard.services.enrichment import subcount_digest
from invenio_stats_dashboard.utils.usage_events import (
    RecordTarget,
    UsageEventFactory,
    download_event,
    index_events,
    view_event,
)

SERIES = "community-usage-delta-agg"
ALIAS = "stats-community-usage-delta"
GOOGLEBOT = "Googlebot/2.1 (+http://www.google.com/bot.html)"  # robot
CURL = "curl/7.68.0"  # robot and machine
IP_GB = "81.2.69.142"  # GeoIP: GB (tests/test_live_events.py)

#: Records created at BASE; D0..D4 are the days after it.
BASE = (datetime.now(timezone.utc) - timedelta(days=45)).replace(
    hour=6, minute=0, second=0, microsecond=0)
D = [BASE.date() + timedelta(days=n) for n in range(1, 6)]

# What each record is, as created below (the oracle reads this, not the index).
FILES = {
    "A": {"data.csv": b"a,b\n1,2\n", "readme.txt": b"read me"},
    "B": {"data.csv": b"bee,data\n"},
    "C": {},
}
FILES["A2"] = FILES["A"]  # a new version importing A's files (same file objects)
RESOURCE_TYPES = {"dataset": {"en": "Dataset"}, "software": {"en": "Software"},
                  "publication-article": {"en": "Journal article"}}
LANGUAGES = {"eng": {"en": "English"}, "fra": {"en": "French"}, "deu": {"en": "German"}}
RIGHTS = {"cc-by-4.0": {"en": "Creative Commons Attribution 4.0 International"}}
FUNDERS = {"00k4n6c32": "European Commission", "01cwqze88": "National Institutes of Health"}
AFFILIATIONS = {"01ggx4157": "CERN", "05gq02987": "Brown University"}
META = {
    "A": dict(resource_type="dataset", languages=["eng", "fra"], funders=["00k4n6c32"],
              publisher="Pub A"),
    "B": dict(resource_type="software", funders=["00k4n6c32", "01cwqze88"],
              creators_affiliations=["01ggx4157"],
              contributors_affiliations=["01ggx4157", "05gq02987"], rights=["cc-by-4.0"]),
    "C": dict(resource_type="publication-article", languages=["deu"]),
}
META["A2"] = META["A"]

# (side, record, day index, hh:mm:ss, session, file key, user agent or None)
EVENTS = [
    ("view", "C", 0, "12:00:00", "s9", None, GOOGLEBOT),  # robot: never counted
    ("view", "A", 1, "23:59:59", "s1", None, None),
    ("download", "B", 1, "23:59:59", "s5", "data.csv", None),
    ("view", "A", 2, "00:00:00", "s1", None, None),
    ("view", "A", 2, "08:00:00", "s2", None, None),
    ("view", "A2", 2, "09:00:00", "s1", None, None),
    ("view", "B", 2, "10:00:00", "s3", None, None),
    ("view", "C", 2, "11:00:00", "s1", None, None),
    ("view", "B", 2, "23:59:59", "s2", None, None),
    ("view", "A", 2, "12:00:00", "s9", None, GOOGLEBOT),
    ("download", "A", 2, "00:00:00", "s1", "data.csv", None),
    ("download", "A", 2, "13:00:00", "s2", "readme.txt", None),
    ("download", "A2", 2, "14:00:00", "s3", "data.csv", None),
    ("download", "B", 2, "23:59:59", "s3", "data.csv", None),
    ("download", "A", 2, "15:00:00", "s4", "data.csv", None),
    ("download", "A", 2, "16:00:00", "s8", "readme.txt", CURL),
    ("view", "B", 3, "00:00:00", "s2", None, None),
    ("download", "A", 3, "00:00:00", "s5", "data.csv", None),
]


def instant(day_index, hms):
    return datetime.combine(D[day_index], time.fromisoformat(hms), tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def history(services, identities, communities, make_record):
    """The records at BASE, then the planned events through the live pipeline."""
    owner = identities["owner"]
    alpha, beta = communities["alpha"].id, communities["beta"].id
    with time_machine.travel(BASE, tick=False):
        made = {"A": make_record(files=FILES["A"], community_id=alpha, **META["A"]),
                "B": make_record(files=FILES["B"], community_id=alpha, **META["B"]),
                "C": make_record(community_id=beta, **META["C"])}
        rdm.add_to_community(owner, made["B"].id, beta)
        draft = current_rdm_records_service.new_version(owner, made["A"].id)
        data = draft.data
        data["metadata"]["publication_date"] = "2024-03-02"
        current_rdm_records_service.update_draft(owner, draft.id, data)
        current_rdm_records_service.import_files(owner, draft.id)
        made["A2"] = current_rdm_records_service.publish(owner, draft.id)
        rdm._refresh()
    resolve = current_rdm_records_service.record_cls.pid.resolve
    records = {k: resolve(v.id) for k, v in made.items()}
    targets = {k: RecordTarget.from_record(r) for k, r in records.items()}
    planned = {"record-view": [], "file-download": []}
    for side, key, day, hms, session, file_key, agent in EVENTS:
        when, target = instant(day, hms), targets[key]
        if side == "view":
            event = view_event(target, when, session, ip_address=IP_GB)
        else:
            file = next(f for f in target.files if f["key"] == file_key)
            event = download_event(target, when, file, session, ip_address=IP_GB)
        if agent:
            event["user_agent"] = agent
        planned["record-view" if side == "view" else "file-download"].append(event)
    UsageEventFactory(subcount_configs=services.config["COMMUNITY_STATS_SUBCOUNTS"]).enrich(
        planned)
    index_events(planned)
    current_search_client.indices.refresh(index=prefix_index("events-stats-*"))
    return {"records": records, "targets": targets,
            "communities": {"A": {alpha}, "A2": {alpha}, "B": {alpha, beta}, "C": {beta}},
            "alpha": alpha, "beta": beta, "secret": communities["secret"].id}


# -- the oracle -------------------------------------------------------------------

def _ext(key):
    return key.rsplit(".", 1)[-1]


def _values(key, side, rec, file_key):
    """Subcount values of one event, from the record's metadata as created (S2, S3, U5)."""
    meta = META[rec]
    return {
        "resource_types": [meta["resource_type"]],
        "access_statuses": ["open" if FILES[rec] else "metadata-only"],
        "languages": meta.get("languages", []),
        "rights": meta.get("rights", []),
        "funders": meta.get("funders", []),
        "periodicals": [],
        "publishers": [meta["publisher"]] if meta.get("publisher") else [],
        "affiliations": sorted(set(meta.get("creators_affiliations", []))
                               | set(meta.get("contributors_affiliations", []))),
        "countries": ["GB"],
        "file_types": sorted({_ext(k) for k in FILES[rec]}) if side == "view"
        else [_ext(file_key)],
    }[key]


def _label(key, value):
    return {"resource_types": RESOURCE_TYPES, "languages": LANGUAGES, "rights": RIGHTS,
            "funders": FUNDERS, "affiliations": AFFILIATIONS}.get(key, {}).get(value, value)


def _side(side, events, history):
    if side == "view":
        out = {"total_events": len(events), "unique_visitors": len({e[4] for e in events}),
               "unique_records": len({history["records"][e[1]]["id"] for e in events}),
               "unique_parents": len({history["records"][e[1]].parent["id"] for e in events})}
        return out
    out = _side("view", events, history)
    out["unique_files"] = len({(history["records"][e[1]]["id"], e[5]) for e in events})
    out["total_volume"] = float(sum(len(FILES[e[1]][e[5]]) for e in events))
    return out


KEYS = ("resource_types", "access_statuses", "languages", "rights", "funders", "periodicals",
        "publishers", "affiliations", "countries", "file_types")


def expected(history, community, day_index):
    """The spec §5.1 body for (community, day), from EVENTS and the records as created."""
    counted = [e for e in EVENTS if e[2] == day_index and e[6] is None
               and (community == "global" or community in history["communities"][e[1]])]
    by_side = {s: [e for e in counted if e[0] == s] for s in ("view", "download")}
    body = {"totals": {s: _side(s, by_side[s], history) for s in by_side}, "subcounts": {}}
    for key in KEYS:
        groups = defaultdict(lambda: {"view": [], "download": []})
        for e in counted:
            for value in _values(key, e[0], e[1], e[5]):
                groups[value][e[0]].append(e)
        body["subcounts"][key] = {
            value: {"id": value, "label": _label(key, value),
                    "view": _side("view", sides["view"], history),
                    "download": _side("download", sides["download"], history)}
            for value, sides in groups.items()}
    return body


def stored(community, day):
    """The stored document, its subcount lists keyed by id."""
    alias = prefix_index(ALIAS)
    current_search_client.indices.refresh(index=alias)
    hits = current_search_client.search(index=alias, body={
        "query": {"ids": {"values": [f"{community}-{day.isoformat()}"]}}})["hits"]["hits"]
    assert len(hits) == 1, (community, day)
    doc = hits[0]["_source"]
    assert doc["period_start"] == f"{day.isoformat()}T00:00:00"
    assert doc["period_end"] == f"{day.isoformat()}T23:59:59"
    lists = doc["subcounts"]
    assert sorted(lists) == sorted(KEYS)
    for key, items in lists.items():
        assert len({i["id"] for i in items}) == len(items), key
    return {"totals": doc["totals"],
            "subcounts": {k: {i["id"]: i for i in items} for k, items in lists.items()}}


def run(community_ids, first, last, checked=True):
    """``checked``: through ``aggregate`` (real communities); else the runner itself."""
    if checked:
        report = aggregate([SERIES], community_ids=community_ids, start_date=first,
                           end_date=last, ignore_bookmark=True)
    else:
        report = runner.run([SERIES], community_ids, first, last, ignore_bookmark=True)
    (result,) = report["results"]
    return result


# -- tests ----------------------------------------------------------------------

def test_days_and_communities_match_the_oracle(history):
    """Every (community, day): totals, subcounts, labels — U1–U5, T1, S2–S4, S7."""
    communities = [history["alpha"], history["beta"], "global"]
    result = run(communities, D[0], D[4])
    assert result["status"] == "success", result
    # D0 has robots only: a series begins at its community's first counted event (G14),
    # so every community is written from D1 on.
    assert result["docs_indexed"] == 3 * 4
    for community in communities:
        for n, day in enumerate(D[1:], start=1):
            assert stored(community, day) == expected(history, community, n), (community, n)


def test_the_hand_computed_figures(history):
    """A few numbers written out by hand, so the oracle itself is checked.

    Each day is aggregated on its own (the day is the whole run: its last
    second is the run's last), then all together: the documents agree.
    """
    single = {}
    for day in D[1:4]:
        assert run([history["alpha"]], day, day)["status"] == "success"
        single[day] = stored(history["alpha"], day)
    run([history["alpha"]], D[1], D[3])
    assert {day: stored(history["alpha"], day) for day in D[1:4]} == single
    alpha = stored(history["alpha"], D[2])
    # views A 00:00:00 s1, A s2, A2 s1, B s3, B 23:59:59 s2 (robot A and beta-only C out)
    assert alpha["totals"]["view"] == {"total_events": 5, "unique_visitors": 3,
                                       "unique_records": 3, "unique_parents": 2}
    # downloads A data.csv ×2, A readme, A2 data.csv (same file object as A's), B data.csv
    assert alpha["totals"]["download"] == {
        "total_events": 5, "unique_visitors": 4, "unique_records": 3, "unique_parents": 2,
        "unique_files": 4, "total_volume": 8.0 + 7 + 8 + 9 + 8}
    types = alpha["subcounts"]["file_types"]
    assert types["txt"]["view"]["total_events"] == 3  # views of A and A2 (csv and txt)
    assert types["csv"]["view"]["total_events"] == 5
    assert types["txt"]["download"]["total_events"] == 1
    assert types["csv"]["download"]["total_events"] == 4
    funders = alpha["subcounts"]["funders"]
    assert {k: (v["label"], v["view"]["total_events"]) for k, v in funders.items()} == {
        "00k4n6c32": ("European Commission", 5), "01cwqze88": ("National Institutes of Health", 2)}
    # B has CERN as creator and contributor affiliation: one count per event
    assert alpha["subcounts"]["affiliations"]["01ggx4157"]["view"]["total_events"] == 2
    # The day's first and last second are in the day, and nowhere else
    assert stored(history["alpha"], D[1])["totals"]["view"]["total_events"] == 1
    assert stored(history["alpha"], D[3])["totals"]["view"]["total_events"] == 1


def test_a_value_reached_through_two_source_fields_counts_once(history):
    """S2 for a subcount configured over several event fields: their union per event."""
    configs = {"both": {"usage_events": {"snapshot_type": "all", "source_fields": [
        {"field": "file_types"}, {"field": "file_types"}]}}}
    ctx = Context(config={"COMMUNITY_STATS_SUBCOUNTS": configs})
    ((day, body),) = usage.compute(ctx, get_series(SERIES), history["alpha"], [D[2]])
    items = {i["id"]: i for i in body["subcounts"]["both"]}
    assert items == expected(history, history["alpha"], 2)["subcounts"]["file_types"]


def test_first_day_is_per_community_and_counts_downloads(history):
    """G14: beta's first counted event is a download; robots do not start a series."""
    ctx, series = Context(), get_series(SERIES)
    assert usage.first_day(ctx, series, history["alpha"]) == D[1]
    assert usage.first_day(ctx, series, history["beta"]) == D[1]  # a download; robot on D0
    assert usage.first_day(ctx, series, history["secret"]) is None


def test_file_ref_written_by_the_live_indexer(history):
    """U5: every live download carries ``<recid>:<file key>``."""
    hits = list(search_engine.helpers.scan(current_search_client, index=prefix_index(
        "events-stats-file-download"), query={"query": {"range": {"timestamp": {
            "gte": f"{D[0]}T00:00:00", "lt": f"{D[4] + timedelta(days=1)}T00:00:00"}}}}))
    assert len(hits) == sum(1 for e in EVENTS if e[0] == "download")
    for hit in hits:
        s = hit["_source"]
        assert s["file_ref"] == f"{s['recid']}:{s['file_key']}"
        assert s["file_types"] == [_ext(s["file_key"])]


# -- volume: 10,000+ events and more than 1,000 subcount values on one day ----------

VOLUME_DAY = (datetime.now(timezone.utc) - timedelta(days=120)).date()
VIEWS, DOWNLOADS, PUBLISHERS = 10_050, 2_000, 1_200


def _volume_docs(community):
    """Synthetic enriched events: VIEWS + DOWNLOADS counted ones, and some that must not."""
    start = datetime.combine(VOLUME_DAY, time(), tzinfo=timezone.utc)

    def at(seconds):
        return (start + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")

    base = {"community_ids": [community], "country": "DE", "is_robot": False,
            "is_machine": False}
    for i in range(VIEWS):  # first at 00:00:00, last at 23:59:59
        yield "record-view", {**base, "timestamp": at(0 if i == 0 else 86399 * i // (VIEWS - 1)),
                              "recid": f"r{i % 2000}", "parent_recid": f"p{i % 2000 // 2}",
                              "visitor_id": f"v{i % 700}", "publisher": f"Pub {i % PUBLISHERS:04d}"}
    for i in range(DOWNLOADS):
        yield "file-download", {**base, "timestamp": at(i * 40), "recid": f"r{i % 400}",
                                "parent_recid": f"p{i % 400 // 2}", "visitor_id": f"v{i % 50}",
                                "file_key": f"f{i % 3}.bin", "file_id": f"shared-{i % 3}",
                                "file_ref": f"r{i % 400}:f{i % 3}.bin", "size": 100}
    noise = {"recid": "r0", "parent_recid": "p0", "visitor_id": "v0"}
    for i in range(30):
        yield "record-view", {**base, **noise, "timestamp": at(i), "is_robot": True}
        yield "record-view", {**base, **noise, "timestamp": at(i), "is_machine": True}
    yield "record-view", {**base, **noise, "timestamp": at(-1)}  # the day before, 23:59:59
    yield "record-view", {**base, **noise, "timestamp": at(86400)}  # the day after, 00:00:00


@pytest.fixture()
def enriched_months(services):
    """Creates enriched months as our live indexer does; deletes them afterwards."""
    made = []

    def create(stem, when, digest=None, properties=None):
        index = prefix_index(f"events-stats-{stem}-{when:%Y-%m}")
        meta = {"_meta": {META_KEY: {"enriched": "live", "subcount_digest": digest or
                                     subcount_digest(services.config["COMMUNITY_STATS_SUBCOUNTS"])}}}
        if properties is None:
            current_search_client.indices.create(index=index, body={"mappings": meta})
        else:  # an index made by an earlier version: exactly these properties
            name = f"{index}-earlier"
            current_search_client.indices.put_index_template(name=name, body={
                "index_patterns": [index], "priority": 1000, "template": {
                    "mappings": {**meta, "dynamic": "strict", "properties": properties},
                    "aliases": {prefix_index(f"events-stats-{stem}"): {}}}})
            try:
                current_search_client.indices.create(index=index)
            finally:
                current_search_client.indices.delete_index_template(name=name)
        made.append(index)
        return index

    yield create
    current_search_client.indices.delete(index=",".join(made), ignore=[404])


def test_ten_thousand_events_and_long_tails_are_exact(services, history, enriched_months):
    """G10 (hit total capped at 10,000), G9 (1,000 buckets), T1, U2, U5 at volume."""
    community = "volume-community"
    for stem in ("record-view", "file-download"):
        for when in {VOLUME_DAY - timedelta(days=1), VOLUME_DAY, VOLUME_DAY + timedelta(days=1)}:
            index = prefix_index(f"events-stats-{stem}-{when:%Y-%m}")
            if not current_search_client.indices.exists(index=index):
                enriched_months(stem, when)
    actions = ({"_index": prefix_index(f"events-stats-{stem}-{doc['timestamp'][:7]}"),
                "_source": doc} for stem, doc in _volume_docs(community))
    search_engine.helpers.bulk(current_search_client, actions, chunk_size=2000)
    current_search_client.indices.refresh(index=prefix_index("events-stats-*"))

    result = run([community], VOLUME_DAY, VOLUME_DAY, checked=False)  # not a real community
    assert result["status"] == "success", result
    doc = stored(community, VOLUME_DAY)
    assert doc["totals"]["view"] == {"total_events": VIEWS, "unique_visitors": 700,
                                     "unique_records": 2000, "unique_parents": 1000}
    assert doc["totals"]["download"] == {
        "total_events": DOWNLOADS, "unique_visitors": 50, "unique_records": 400,
        "unique_parents": 200, "unique_files": 1200,  # lcm(400, 3) (record, key) pairs
        "total_volume": 100.0 * DOWNLOADS}
    publishers = doc["subcounts"]["publishers"]
    assert len(publishers) == PUBLISHERS
    for k in range(PUBLISHERS):
        views = [i for i in range(VIEWS) if i % PUBLISHERS == k]
        item = publishers[f"Pub {k:04d}"]
        assert item["label"] == f"Pub {k:04d}"
        assert item["view"] == {
            "total_events": len(views), "unique_visitors": len({i % 700 for i in views}),
            "unique_records": len({i % 2000 for i in views}),
            "unique_parents": len({i % 2000 // 2 for i in views})}, k
        assert item["download"]["total_events"] == 0
    assert sum(p["view"]["total_events"] for p in publishers.values()) == VIEWS
    assert doc["subcounts"]["countries"]["DE"]["download"]["unique_files"] == 1200


def test_downloads_without_file_ref_are_refused_until_re_enriched(services, history,
                                                                  enriched_months):
    """U5 on existing months: an earlier version's enriched month is out of date.

    ``re-enrich`` maps ``file_ref`` on the old index, writes it on every
    download, and the aggregation (which refused the month before) counts it.
    """
    from invenio_stats_dashboard.proxies import current_event_reindexing_service
    from invenio_stats_dashboard.search_indices.templates import event_template_properties

    when = (datetime.now(timezone.utc) - timedelta(days=240)).replace(microsecond=0)
    month = f"{when:%Y-%m}"
    earlier = {k: v for k, v in event_template_properties("file-download").items()
               if k != "file_ref"}
    # The default configuration's fingerprint as the first release computed it.
    index = enriched_months("file-download", when, digest="2a741a9dadff448d",
                            properties=earlier)
    service = current_event_reindexing_service._get_current_object()
    assert not service.enrichment_is_current("download", month)
    a, b = history["targets"]["A"], history["targets"]["B"]
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S")
    docs = [{"timestamp": stamp, "recid": t.recid, "parent_recid": t.parent_recid,
             "file_key": "data.csv", "file_id": f["file_id"], "size": f["size"],
             "visitor_id": f"v{n}", "community_ids": [], "is_robot": False,
             "is_machine": False}
            for n, (t, f) in enumerate([(a, a.files[0]), (b, b.files[0]), (a, a.files[0])])]
    for doc in docs:
        current_search_client.index(index=index, body=doc)
    current_search_client.indices.refresh(index=index)

    result = run(["global"], when.date(), when.date())
    assert result["status"] == "failed" and "re-enrich" in result["error_details"][0], result

    report = service.reenrich_events(event_types=["download"], month_filter=month)
    assert report["completed"], report
    current_search_client.indices.refresh(index=index)
    refs = sorted(h["_source"]["file_ref"] for h in search_engine.helpers.scan(
        current_search_client, index=index, query={"query": {"match_all": {}}}))
    assert refs == sorted([f"{a.recid}:data.csv"] * 2 + [f"{b.recid}:data.csv"])
    assert service.enrichment_is_current("download", month)

    result = run(["global"], when.date(), when.date())
    assert result["status"] == "success", result
    assert stored("global", when.date())["totals"]["download"]["unique_files"] == 2


def test_file_ref_written_by_the_migration(services, history):
    """U5: a legacy (stock) month migrated by the painless script carries ``file_ref``."""
    from legacy_indices import index_legacy

    from invenio_stats_dashboard.proxies import current_event_reindexing_service

    when = (datetime.now(timezone.utc) - timedelta(days=300)).replace(microsecond=0)
    month = f"{when:%Y-%m}"
    a = history["targets"]["A"]
    planned = {"record-view": [], "file-download": [
        download_event(a, when + timedelta(minutes=n), f, f"m{n}", ip_address=IP_GB)
        for n, f in enumerate(a.files)]}
    index_legacy(planned)
    try:
        report = current_event_reindexing_service.reindex_events(
            event_types=["download"], month_filter=month)
        assert report["completed"], report
        index = prefix_index(f"events-stats-file-download-{month}-v2.0.0")
        current_search_client.indices.refresh(index=index)
        refs = sorted(h["_source"]["file_ref"] for h in search_engine.helpers.scan(
            current_search_client, index=index, query={"query": {"match_all": {}}}))
        assert refs == sorted(f"{a.recid}:{f['key']}" for f in a.files)
    finally:
        current_search_client.indices.delete(
            index=prefix_index(f"events-stats-file-download-{month}*"), ignore=[404])
