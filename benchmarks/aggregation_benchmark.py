# Part of invenio-stats-dashboard (MIT License).
"""Aggregations on a generated instance: catch-up per series, hourly runs, and a floor.

Self-contained: every index lives under its own prefix (``bench-<hex>-``,
deleted at the end) on the local OpenSearch; no instance's indices are read
or written, and the database is not touched (the communities are ids in the
membership log and the records index only).

    .venv/bin/python benchmarks/aggregation_benchmark.py                 # 200,000 events
    .venv/bin/python benchmarks/aggregation_benchmark.py --events 1000000
    .venv/bin/python benchmarks/aggregation_benchmark.py \
        --series community-records-delta-added-agg --profile --hourly-years 1

The generated instance: ``--years`` of history (default 1) ending today,
``--communities`` (50), ``--records`` (5,000 per year; a tenth of them new
versions of earlier ones) with files, owners and rich metadata in a records
index with InvenioRDM's own (strict) mapping, their membership log (every
record in ``global`` and one to three communities; one in twenty removed
later), and ``--events`` stock-shaped views and downloads per year, enriched
by the real migration.

Printed: per series of the catch-up (``--until-caught-up``, one series at a
time, in the scheduled order) wall time, documents written and the peak RSS
of the process; the cost of one hourly run after the catch-up (median of
three) at each history length of ``--hourly-years`` (default 1 and 2: a
second instance is generated for the longer one, at the same density per
year), to show it stays flat; and, measured in the same run, a **floor**:
one composite aggregation over every usage event grouped by (community,
day) with a visitor cardinality — roughly the least any usage aggregation
must ask of OpenSearch — and the usage delta catch-up's time as a ratio of it.

Options on the same generated instance (no data of their own):

* ``--series NAME...``: only these registered series in the catch-up and the
  hourly runs (a snapshot needs its delta's documents: name both);
* ``--profile``: a cProfile of the main instance's catch-up, the top 25
  functions by cumulative time printed after its table — the table's wall
  times then include the profiler's overhead. On Python 3.12 the profile
  also sees the chain locks' heartbeat threads: their idle waits inflate the
  cumulative times of ``threading`` and ``JobLock.release`` rows;
* ``--cardinality-days N`` (0: off): after the catch-up, ``global``'s last N
  complete days computed twice, each after clearing the events' request
  cache: by ``usage.compute`` (what the aggregator runs: exact distinct counts
  by a counting script) and the way the plan first proposed — composite
  aggregations per subcount (day × value), pages of 100 buckets, with
  ``cardinality`` (``precision_threshold`` 40,000) sub-aggregations for the
  distinct visitors, records, parents and files — printed with their ratio.
"""

import argparse
import cProfile
import json
import pstats
import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from migration_memory_benchmark import PeakRSS  # noqa: E402

from invenio_stats_dashboard.aggregations.series import SCHEDULED  # noqa: E402

EXTS = ["pdf", "csv", "txt", "zip", "png"]
LANGS = ["eng", "fra", "deu", "spa", "ita", "nld", "por", "pol"]
RESOURCE_TYPES = ["publication-article", "dataset", "software", "image-photo",
                  "publication-book"]
ACCESS = ["open", "restricted", "metadata-only", "embargoed"]


def record_doc(n, rng, created, parent, owner, communities):
    """A published version's indexed document (InvenioRDM's strict mapping)."""
    recid = f"b{n:07d}"
    files = [{"key": f"file{k}.{rng.choice(EXTS)}", "size": rng.randint(1_000, 5_000_000)}
             for k in range(rng.choice([0, 0, 1, 1, 2, 3]))]
    affiliations = [{"id": f"0aff{rng.randrange(400):04d}", "name": "An institute"}
                    for _ in range(rng.randint(0, 2))]
    return {
        "id": recid, "uuid": str(uuid.uuid4()), "created": created, "updated": created,
        "is_published": True, "is_deleted": False, "has_draft": False,
        "access": {"record": "public", "files": "public", "status": rng.choice(ACCESS)},
        "parent": {"id": parent, "access": {"owned_by": {"user": str(owner)}},
                   "communities": {"ids": communities}},
        "files": {"enabled": bool(files), "count": len(files),
                  "totalbytes": sum(f["size"] for f in files),
                  "types": sorted({f["key"].rsplit(".", 1)[1] for f in files}),
                  "entries": [{**f, "ext": f["key"].rsplit(".", 1)[1]} for f in files]},
        "metadata": {
            "title": f"Benchmark record {n}",
            "publication_date": created[:10],
            "resource_type": {"id": rng.choice(RESOURCE_TYPES),
                              "title": {"en": "A resource type"}},
            "languages": [{"id": lang, "title": {"en": lang}}
                          for lang in rng.sample(LANGS, rng.randint(0, 2))],
            "rights": [{"id": rng.choice(["cc-by-4.0", "cc0-1.0"]),
                        "title": {"en": "A licence"}}],
            "publisher": f"Press {rng.randrange(30)}",
            "creators": [{"person_or_org": {"name": f"Author {n}", "type": "personal"},
                          "affiliations": affiliations}],
            "contributors": [{"person_or_org": {"name": f"Editor {n}", "type": "personal"},
                              "affiliations": affiliations[:1], "role": {"id": "editor"}}],
            "funding": [{"funder": {"id": f"0fund{rng.randrange(60):03d}",
                                    "name": "A funder"}}] if rng.random() < 0.4 else [],
            "subjects": [{"id": f"subj{rng.randrange(200)}", "subject": "A subject"}],
        },
    }


def generate(client, args, years, rng):
    """Records, membership log, migrated usage events; returns the community ids."""
    from invenio_search.engine import search
    from invenio_search.proxies import current_search
    from invenio_search.utils import prefix_index

    from invenio_stats_dashboard.proxies import current_event_reindexing_service as svc
    from invenio_stats_dashboard.search_indices.names import records_index
    from invenio_stats_dashboard.search_indices.stock import create_stock_month
    from invenio_stats_dashboard.services import events_log as log

    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(days=365 * years)
    name = next(n for n in current_search.mappings if n.startswith("rdmrecords-records-record"))
    with open(current_search.mappings[name]) as fh:
        body = json.load(fh)
    body.setdefault("settings", {})["index"] = {"number_of_replicas": 0}
    client.indices.create(index=prefix_index(f"{name}-bench"),
                          body={**body, "aliases": {records_index(): {}}})
    communities = [str(uuid.uuid4()) for _ in range(args.communities)]
    records, docs, changes, span = [], [], [], (now - start).total_seconds()
    for n in range(args.records * years):
        when = start + timedelta(seconds=span * n / (args.records * years))
        created = when.isoformat()
        if records and rng.random() < 0.1:  # a new version of an earlier record
            _, parent, owner, members, _ = rng.choice(records)
        else:
            parent, owner = f"p{n:07d}", rng.randrange(500)
            members = rng.sample(communities, rng.randint(1, 3))
        doc = record_doc(n, rng, created, parent, owner, members)
        records.append((doc["id"], parent, owner, members, doc["files"]["entries"]))
        docs.append({"_index": records_index(), "_id": doc["uuid"], "_source": doc})
        for community in ["global", *members]:
            changes.append(log.make_event(doc["id"], community, "added", created, created,
                                          created[:10]))
        if rng.random() < 0.05:  # removed from one community later
            gone = when + timedelta(days=rng.randint(1, 200))
            if gone < now:
                changes.append(log.make_event(doc["id"], members[0], "removed",
                                              gone.isoformat(), created, created[:10]))
    search.helpers.bulk(client, docs, chunk_size=2000, request_timeout=300)
    log.write(changes, client)
    client.indices.refresh(index=records_index())
    log.refresh(client)

    months, total = [], args.events * years
    month = start.replace(day=1)
    while month <= now:
        months.append(month.strftime("%Y-%m"))
        month = (month + timedelta(days=32)).replace(day=1)
    for stem in ("record-view", "file-download"):
        for m in months:
            create_stock_month(stem, m, client)

    def events():
        for n in range(total):
            when = start + timedelta(seconds=rng.uniform(0, span))
            recid, parent, _, _, entries = rng.choice(records)
            stem = "file-download" if entries and rng.random() < 0.4 else "record-view"
            source = {"timestamp": when.strftime("%Y-%m-%dT%H:%M:%S"), "recid": recid,
                      "parent_recid": parent, "unique_id": f"ui_{recid}",
                      "visitor_id": f"v{rng.randrange(20_000)}",
                      "unique_session_id": f"s{n}", "country": rng.choice(["GB", "FR", "US"]),
                      "referrer": None, "is_robot": rng.random() < 0.03,
                      "is_machine": False, "via_api": False}
            if stem == "file-download":
                entry = rng.choice(entries)
                source.update(bucket_id="b" + parent, file_id=f"f{recid}{entry['key']}",
                              file_key=entry["key"], size=entry["size"])
            yield {"_index": prefix_index(f"events-stats-{stem}-{when:%Y-%m}"),
                   "_id": f"bench-{n}", "_source": source}

    search.helpers.bulk(client, events(), chunk_size=5000, request_timeout=300)
    client.indices.refresh(index=prefix_index("events-stats-*"))
    report = svc.reindex_events(fresh_start=True)
    if not report["completed"]:
        raise SystemExit(f"the migration did not complete: {report.get('error')}")
    return communities + ["global"]


def timed_run(communities, names, **kwargs):
    """One aggregation run (no community resolution: the ids are the log's)."""
    from invenio_stats_dashboard.aggregations.runner import run

    started = time.monotonic()
    result = run(names, communities, **kwargs)
    return time.monotonic() - started, result


def catch_up(communities, names, rss, profiler=None):
    """Per series of ``names`` (None: all): seconds, documents, peak RSS, status."""
    from invenio_stats_dashboard.aggregations.series import in_order

    rows = []
    for series in in_order(names):
        rss.reset()
        if profiler:
            profiler.enable()
        seconds, result = timed_run(communities, [series.name], until_caught_up=True)
        if profiler:
            profiler.disable()
        r = result["results"][0]
        rows.append((series.name, seconds, r["docs_indexed"], rss.peak, r["status"],
                     (r["error_details"] or [""])[0][:80]))
    return rows


def hourly(communities, names, repeat=3, profile=False):
    """Median seconds of a plain run of ``names`` (None: every series) after the catch-up.

    ``profile``: one more run, under cProfile and with the cluster requests
    counted (by method and path shape), printed — where an hourly run's time goes.
    """
    times = [timed_run(communities, names)[0] for _ in range(repeat)]
    if profile:
        profile_hourly(communities, names)
    return statistics.median(times)


def profile_hourly(communities, names):
    """One hourly run under cProfile, counting the cluster requests it makes."""
    import re
    from collections import Counter

    from invenio_search.proxies import current_search_client as client

    transport, counts = client.transport, Counter()
    original = transport.perform_request

    def counting(method, url, *args, **kwargs):
        shape = re.sub(r"/bench-[0-9a-f]+-[^/]*", "/<index>", url.split("?")[0])
        shape = re.sub(r"/_doc/.*", "/_doc/<id>", shape)
        refresh = "refresh" in str(kwargs.get("params") or (args[0] if args else ""))
        counts[f"{method} {shape}{' (refresh)' if refresh else ''}"] += 1
        return original(method, url, *args, **kwargs)

    transport.perform_request = counting
    profiler = cProfile.Profile()
    try:
        profiler.enable()
        seconds = timed_run(communities, names)[0]
        profiler.disable()
    finally:
        transport.perform_request = original
    print(f"\nOne hourly run under cProfile: {seconds:.2f} s, "
          f"{sum(counts.values())} cluster requests:")
    for shape, n in counts.most_common(20):
        print(f"  {n:>6}  {shape}")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(30)


def cardinality(field):
    """A distinct count the way upstream (and the plan at first) did it."""
    return {"cardinality": {"field": field, "precision_threshold": 40000}}


def composite_pages(client, index, query, sources, metrics):
    """Page a composite aggregation of ``sources`` with ``metrics`` to its end; buckets."""
    after, buckets = None, 0
    while True:
        # pages of 100: each bucket's cardinality at precision 40,000 reserves up to
        # ~320 kB, and 1,000 of them tripped a 1 GB heap's parent breaker
        composite = {"size": 100, "sources": sources, **({"after": after} if after else {})}
        res = client.search(index=index, body={
            "size": 0, "query": query,
            "aggs": {"g": {"composite": composite, "aggs": metrics}}},
            request_timeout=600)["aggregations"]["g"]
        buckets += len(res["buckets"])
        after = res.get("after_key")
        if len(res["buckets"]) < 100 or not after:
            return buckets


def floor(client):
    """One composite aggregation over every usage event: (community, day) + visitors."""
    from invenio_search.utils import prefix_index

    started = time.monotonic()
    buckets = composite_pages(
        client, prefix_index("events-stats-*-v2.0.0"),
        {"bool": {"must_not": [{"term": {"is_robot": True}}]}},
        [{"c": {"terms": {"field": "community_ids"}}},
         {"d": {"date_histogram": {"field": "timestamp", "calendar_interval": "day"}}}],
        {"v": cardinality("visitor_id")})
    return time.monotonic() - started, buckets


def compare_cardinality(client, n_days):
    """``global``'s last ``n_days`` complete days: (ours s, documents, cardinality s, buckets)."""
    from invenio_stats_dashboard.aggregations import usage
    from invenio_stats_dashboard.aggregations.engine import Context
    from invenio_stats_dashboard.aggregations.series import get
    from invenio_stats_dashboard.aggregations.subcounts import blocks

    today = datetime.now(timezone.utc).date()
    days = [today - timedelta(days=n) for n in range(n_days, 0, -1)]
    aliases = [usage.events_alias(side) for side in usage.SIDES]
    client.indices.clear_cache(index=aliases, request=True)
    ctx = Context()
    started = time.monotonic()
    written = sum(1 for _ in usage.compute(ctx, get("community-usage-delta-agg"), "global",
                                           days))
    ours = time.monotonic() - started
    client.indices.clear_cache(index=aliases, request=True)
    query = usage._query("global", days[0], days[-1])  # the same events as ours
    day = {"d": {"date_histogram": {"field": "timestamp", "calendar_interval": "1d"}}}
    started, buckets = time.monotonic(), 0
    for side, fields in usage.DISTINCT.items():
        metrics = {key: cardinality(field) for key, field in fields.items()}
        for block in [None, *blocks(ctx.subcount_configs, "usage")]:
            sources = [day] + ([{"v": {"terms": {"field": block.sources[0].field}}}]
                               if block else [])
            buckets += composite_pages(client, usage.events_alias(side), query, sources,
                                       metrics)
    return ours, written, time.monotonic() - started, buckets


def print_catch_up(years, rows):
    """The main instance's catch-up table."""
    print(f"\nCatch-up, {years} year(s):")
    print(f"{'series':<42}{'wall s':>9}{'documents':>11}{'peak RSS MB':>13}  status")
    for name, seconds, written, peak, status, why in rows:
        print(f"{name:<42}{seconds:>9.1f}{written:>11}{peak:>13.0f}  {status} {why}")
    print(f"{'total':<42}{sum(r[1] for r in rows):>9.1f}{sum(r[2] for r in rows):>11}"
          f"{max(r[3] for r in rows):>13.0f}")


def instance(args, years, rss, main):
    """Generate an instance of ``years``, catch up, time hourly runs; clean up."""
    from invenio_app.factory import create_api

    prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    app = create_api(SEARCH_INDEX_PREFIX=prefix, COMMUNITY_STATS_CATCHUP_INTERVAL=366,
                     STATS_DASHBOARD_LOCK_LEASE=60)
    with app.app_context():
        from invenio_search.proxies import current_search_client as client

        try:
            started = time.monotonic()
            communities = generate(client, args, years, random.Random(years))
            # one node: replicas are never assigned, but count against the shared
            # cluster's shard limit (other test runs then fail to create indices)
            client.indices.put_settings(index=f"{prefix}*",
                                        body={"index": {"number_of_replicas": 0}})
            print(f"[{years} year(s)] generated {args.records * years} records, "
                  f"{args.events * years} events, {len(communities) - 1} communities in "
                  f"{time.monotonic() - started:.0f} s (prefix {prefix})", flush=True)
            profiler = cProfile.Profile() if main and args.profile else None
            rows = catch_up(communities, args.series, rss, profiler)
            client.indices.put_settings(index=f"{prefix}*",
                                        body={"index": {"number_of_replicas": 0}})
            if not main:
                print(f"[{years} year(s)] catch-up {sum(r[1] for r in rows):.1f} s, "
                      f"statuses {sorted({r[4] for r in rows})}", flush=True)
                return hourly(communities, args.series, profile=args.profile_hourly)
            print_catch_up(years, rows)
            if profiler:
                print("\nWhere the catch-up's time went (cProfile, top 25 cumulative; "
                      "lock heartbeat waits inflate the threading rows):")
                pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
            seconds, buckets = floor(client)
            print(f"floor: one composite aggregation over all usage events by "
                  f"(community, day) with visitor cardinality: {seconds:.1f} s "
                  f"({buckets} buckets)")
            usage_row = next((r for r in rows if r[0] == "community-usage-delta-agg"), None)
            if usage_row and seconds:
                print(f"  community-usage-delta-agg catch-up / floor: "
                      f"{usage_row[1] / seconds:.2f}")
            if args.cardinality_days:
                ours, written, card, buckets = compare_cardinality(client,
                                                                   args.cardinality_days)
                print(f"global, last {args.cardinality_days} complete day(s): usage.compute "
                      f"{ours:.2f} s ({written} documents); composite + cardinality(40,000) "
                      f"{card:.2f} s ({buckets} buckets); ratio cardinality / ours "
                      f"{card / max(ours, 1e-6):.2f}")
            return hourly(communities, args.series, profile=args.profile_hourly)
        finally:
            client.indices.delete(index=f"{prefix}*", ignore=[404], expand_wildcards="all")
            for t in client.indices.get_index_template(name=f"{prefix}*", ignore=[404]).get(
                    "index_templates", []):
                client.indices.delete_index_template(name=t["name"], ignore=[404])
            client.indices.delete_template(name=f"{prefix}*", ignore=[404])


def main():
    """Generate, aggregate, report, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="usage events per year")
    parser.add_argument("--records", type=int, default=5_000, help="records per year")
    parser.add_argument("--communities", type=int, default=50)
    parser.add_argument("--years", type=int, default=1, help="history of the main figures")
    parser.add_argument("--hourly-years", type=int, nargs="*", default=[1, 2],
                        help="history lengths of the hourly comparison")
    parser.add_argument("--series", nargs="+", choices=SCHEDULED, metavar="NAME",
                        help="only these registered series (default: all); a snapshot "
                             "needs its delta too")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the main catch-up, print the top 25 (cumulative)")
    parser.add_argument("--profile-hourly", action="store_true",
                        help="after the timed hourly runs, one more under cProfile with "
                             "its cluster requests counted, printed")
    parser.add_argument("--cardinality-days", type=int, default=0, metavar="N",
                        help="after the catch-up, global's last N complete days by the "
                             "cardinality way against usage.compute (0: off)")
    args = parser.parse_args()
    if not 0 <= args.cardinality_days <= 365 * args.years:
        parser.error("--cardinality-days must be between 0 and the history's days")
    rss = PeakRSS()
    try:
        hourly_cost = {args.years: instance(args, args.years, rss, main=True)}
        for years in args.hourly_years:
            if years not in hourly_cost:
                hourly_cost[years] = instance(args, years, rss, main=False)
    finally:
        rss.stop()
    which = "all series" if not args.series else ", ".join(args.series)
    print(f"\nHourly run after catch-up ({which}, median of 3):")
    for years, seconds in sorted(hourly_cost.items()):
        print(f"  {years} year(s) of history: {seconds:.2f} s")


if __name__ == "__main__":
    main()
