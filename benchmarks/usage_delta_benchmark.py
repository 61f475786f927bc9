# Part of invenio-stats-dashboard (MIT License).
"""Usage deltas: time per community-day, and the counting script vs ``cardinality``.

Needs only OpenSearch (127.0.0.1:9200 or ``--host``); no instance:

    .venv/bin/python benchmarks/usage_delta_benchmark.py --events 200000

Bulk-indexes synthetic enriched events (views and downloads, monthly
indices with our v2 mappings under a scratch prefix) for ``--communities``
communities over ``--days`` days, then:

1. computes every usage delta document of every community and ``global``
   with ``aggregations.usage.compute`` (what the aggregator runs), and prints
   wall time, documents, time per community-day and peak RSS;
2. computes the same days of ``global`` the way the plan first proposed:
   composite aggregations per subcount (day × value) with ``cardinality``
   (``precision_threshold`` 40,000) sub-aggregations, pages of 100 buckets
   (500 trip a 1 GB heap's memory breaker) — to show why the script is used;
3. deletes everything it created.
"""

import argparse
import random
import resource
import time
import uuid
from datetime import date, timedelta

from flask import Flask
from opensearchpy import OpenSearch, helpers

from invenio_stats_dashboard.search_indices.templates import event_template_properties

STEMS = {"view": "record-view", "download": "file-download"}


def generate(args, prefix):
    """Bulk actions of the synthetic events."""
    rng = random.Random(1)
    first = date(2023, 1, 1)
    countries = [f"C{n}" for n in range(60)]
    types = ["dataset", "software", "publication-article", "image-photo"]
    for n in range(args.events):
        side = "download" if rng.random() < 0.25 else "view"
        rec = rng.randrange(args.records)
        day = first + timedelta(days=rng.randrange(args.days))
        community = f"c{rec % args.communities}"
        communities = [community] + ([f"c{(rec + 7) % args.communities}"] if rec % 10 == 0 else [])
        doc = {"timestamp": f"{day}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00",
               "recid": f"r{rec}", "parent_recid": f"p{rec // 2}",
               "visitor_id": f"v{day.toordinal()}-{rng.randrange(5000)}",
               "community_ids": communities, "is_robot": rng.random() < 0.02,
               "is_machine": False, "country": rng.choice(countries),
               "resource_type": {"id": types[rec % len(types)],
                                 "title": {"en": types[rec % len(types)].title()}},
               "access_status": "open" if rec % 5 else "metadata-only",
               "languages": [{"id": "eng", "title": {"en": "English"}}] + (
                   [{"id": "fra", "title": {"en": "French"}}] if rec % 3 == 0 else []),
               "publisher": f"Publisher {rec % 300}",
               "funders": [{"id": f"f{rec % 40}", "name": f"Funder {rec % 40}"}],
               "affiliations": [{"id": f"a{rec % 500}", "name": f"Affiliation {rec % 500}"}],
               "file_types": ["pdf", "csv"] if rec % 2 else ["pdf"]}
        if side == "download":
            key = f"file{rng.randrange(3)}.{'pdf' if rec % 2 == 0 or rng.random() < .5 else 'csv'}"
            doc.update(file_key=key, file_id=f"{rec}-{key}", file_ref=f"r{rec}:{key}",
                       size=rng.randrange(1, 10_000_000), file_types=[key.rsplit(".", 1)[1]])
        yield {"_index": f"{prefix}events-stats-{STEMS[side]}-{day:%Y-%m}", "_source": doc}


def create_indices(client, prefix, days):
    """Monthly indices with our v2 mappings and the read aliases."""
    months = sorted({(date(2023, 1, 1) + timedelta(days=d)).strftime("%Y-%m")
                     for d in range(days)})
    for stem in STEMS.values():
        props = event_template_properties(stem)
        for month in months:
            client.indices.create(index=f"{prefix}events-stats-{stem}-{month}", body={
                "settings": {"number_of_shards": 1, "number_of_replicas": 0},
                "mappings": {"dynamic": "strict", "properties": props},
                "aliases": {f"{prefix}events-stats-{stem}": {}}})


def cardinality_way(client, prefix, configs, days):
    """Global's days by composite (day × value) + ``cardinality`` 40,000; seconds."""
    from invenio_stats_dashboard.aggregations.subcounts import blocks

    started = time.monotonic()
    query = {"range": {"timestamp": {"gte": f"{days[0]}T00:00:00",
                                     "lt": f"{days[-1] + timedelta(days=1)}T00:00:00"}}}
    day = {"day": {"date_histogram": {"field": "timestamp", "calendar_interval": "1d"}}}
    for side, stem in STEMS.items():
        fields = {"v": "visitor_id", "r": "recid", "p": "parent_recid"}
        if side == "download":
            fields["f"] = "file_ref"
        metrics = {k: {"cardinality": {"field": f, "precision_threshold": 40000}}
                   for k, f in fields.items()}
        for block in [None, *blocks(configs, "usage")]:
            sources = [day] + ([{"v": {"terms": {"field": block.sources[0].field}}}]
                               if block else [])
            after = None
            while True:
                composite = {"size": 100, "sources": sources, **({"after": after} if after else {})}
                res = client.search(index=f"{prefix}events-stats-{stem}", body={
                    "size": 0, "query": query,
                    "aggs": {"c": {"composite": composite, "aggs": metrics}}},
                    request_timeout=600)
                buckets = res["aggregations"]["c"]["buckets"]
                if len(buckets) < 100:
                    break
                after = res["aggregations"]["c"]["after_key"]
    return time.monotonic() - started


def main():
    """Generate, compute, compare, clean up."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--communities", type=int, default=50)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--compare-days", type=int, default=30,
                        help="days of global computed the cardinality way (0: skip)")
    parser.add_argument("--host", default="127.0.0.1:9200")
    args = parser.parse_args()

    host, port = args.host.split(":")
    client = OpenSearch([{"host": host, "port": int(port)}], timeout=600)
    prefix = f"isdbench-{uuid.uuid4().hex[:8]}-"
    app = Flask("usage-delta-benchmark")
    app.config["SEARCH_INDEX_PREFIX"] = prefix
    from invenio_stats_dashboard.config.subcounts import COMMUNITY_STATS_SUBCOUNTS as configs

    try:
        create_indices(client, prefix, args.days)
        started = time.monotonic()
        helpers.bulk(client, generate(args, prefix), chunk_size=5000, request_timeout=600)
        client.indices.refresh(index=f"{prefix}*")
        print(f"indexed {args.events} events in {time.monotonic() - started:.1f} s")

        with app.app_context():
            from invenio_stats_dashboard.aggregations import usage
            from invenio_stats_dashboard.aggregations.engine import Context
            from invenio_stats_dashboard.aggregations.series import get

            config = {"COMMUNITY_STATS_SUBCOUNTS": configs}
            series = get("community-usage-delta-agg")
            days = [date(2023, 1, 1) + timedelta(days=d) for d in range(args.days)]
            communities = [f"c{n}" for n in range(args.communities)] + ["global"]
            ctx = Context(config=config, client=client)
            started, written = time.monotonic(), 0
            per_community = {}
            for community in communities:
                t = time.monotonic()
                written += sum(1 for _ in usage.compute(ctx, series, community, days))
                per_community[community] = time.monotonic() - t
            wall = time.monotonic() - started
            print(f"usage deltas: {written} documents ({len(communities)} communities × "
                  f"{len(days)} days) in {wall:.1f} s = {1000 * wall / written:.1f} ms per "
                  f"community-day; global alone {per_community['global']:.1f} s; "
                  f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")
            if args.compare_days:
                some = days[:args.compare_days]
                t = time.monotonic()
                list(usage.compute(Context(config=config, client=client), series, "global", some))
                script = time.monotonic() - t
                card = cardinality_way(client, prefix, configs, some)
                print(f"global, {len(some)} days: counting script {script:.1f} s, "
                      f"composite + cardinality(40,000) {card:.1f} s")
    finally:
        client.indices.delete(index=f"{prefix}*", ignore=[404], expand_wildcards="all")


if __name__ == "__main__":
    main()
