# Part of invenio-stats-dashboard (MIT License).
"""Usage-event migration throughput vs OpenSearch's own ``_reindex``.

Run inside an instance with records and a back-filled membership log (the
demo is one):

    INVENIO_INSTANCE_PATH=.demo/instance .venv/bin/python benchmarks/migration_benchmark.py \
        --events 200000 --months 6

It bulk-indexes synthetic stock-shaped view events for the instance's records
into six months of 2019 (``…-events-stats-record-view-2019-MM``), migrates
them with ``EventReindexingService`` (timed), then runs a server-side
``_reindex`` with a painless script of the same indices into scratch indices
(timed), prints events/s of both, their ratio and the process's peak RSS,
and deletes everything it created.
"""

import argparse
import random
import resource
import time

from opensearchpy import helpers


def main():
    """Generate, migrate, reindex, report, clean up."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--parallel", type=int, default=None,
                        help="record groups in flight (default: the config's)")
    parser.add_argument("--profile", action="store_true", help="print where migration time goes")
    args = parser.parse_args()

    from invenio_app.factory import create_api

    app = create_api()
    with app.app_context():
        from invenio_search.proxies import current_search_client as client
        from invenio_search.utils import prefix_index

        from invenio_stats_dashboard.proxies import current_event_reindexing_service as svc

        hits = client.search(index=prefix_index("rdmrecords-records"),
                             body={"size": 1000, "_source": ["id", "parent.id"]})["hits"]["hits"]
        records = [(h["_source"]["id"], h["_source"]["parent"]["id"]) for h in hits]
        months = [f"2019-{m:02d}" for m in range(1, args.months + 1)]
        sources = [prefix_index(f"events-stats-record-view-{m}") for m in months]
        rng = random.Random(1)

        def actions():
            for n in range(args.events):
                month = months[n % len(months)]
                recid, parent = rng.choice(records)
                yield {"_index": prefix_index(f"events-stats-record-view-{month}"),
                       "_id": f"bench-{n}", "_source": {
                           "timestamp": f"{month}-{rng.randint(1, 28):02d}T"
                                        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00",
                           "recid": recid, "parent_recid": parent,
                           "unique_id": f"ui_{recid}", "visitor_id": f"v{n % 5000}",
                           "unique_session_id": f"s{n}", "country": "GB",
                           "is_robot": False, "is_machine": False, "via_api": False}}

        try:
            started = time.monotonic()
            helpers.bulk(client, actions(), chunk_size=5000, request_timeout=120)
            client.indices.refresh(index=",".join(sources))
            print(f"generated {args.events} events in {time.monotonic() - started:.1f} s")

            options = {"batch_size": args.batch_size, "parallel_groups": args.parallel}
            started = time.monotonic()
            if args.profile:
                import cProfile
                import pstats
                profiler = cProfile.Profile()
                report = profiler.runcall(svc.reindex_events, event_types=["view"],
                                          month_filter=months, fresh_start=True, **options)
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
            else:
                report = svc.reindex_events(event_types=["view"], month_filter=months,
                                            fresh_start=True, **options)
            migrate_s = time.monotonic() - started
            assert report["completed"], report
            migrated = report["total_processed"]

            started = time.monotonic()
            total = 0
            for source in sources:
                res = client.reindex(body={
                    "source": {"index": source, "size": 5000},
                    "dest": {"index": f"bench-reindex-{source}"},
                    "script": {"lang": "painless", "params": {"c": {r: ["x"] for r, _ in records}},
                               "source": "ctx._source.community_ids = "
                                         "params.c.getOrDefault(ctx._source.recid, [])"}},
                    refresh=True, wait_for_completion=True, request_timeout=600)
                total += res["total"]
            reindex_s = time.monotonic() - started
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            ours, theirs = migrated / migrate_s, total / reindex_s
            print(f"migration: {migrated} events in {migrate_s:.1f} s = {ours:,.0f} events/s")
            print(f"_reindex:  {total} events in {reindex_s:.1f} s = {theirs:,.0f} events/s")
            print(f"ratio: {ours / theirs:.2f}   peak RSS: {rss_mb:.0f} MB")
        finally:
            for source in sources:
                for index in (source, f"{source}-v2.0.0", f"bench-reindex-{source}"):
                    client.indices.delete(index=index, ignore=[404])
                svc.reindexing_bookmark_api.delete_bookmark(
                    f"view-{source[-7:]}-reindexing")


if __name__ == "__main__":
    main()
