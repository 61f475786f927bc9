# Part of invenio-stats-dashboard (MIT License).
"""Records series (added / created / published bases): time per unit, documents, memory.

Self-contained: runs against the local OpenSearch under its own index prefix
(``bench-<hex>-``, deleted at the end) and the Redis of ``ISD_REDIS_URL``:

    ISD_REDIS_URL=redis://127.0.0.1:6398 .venv/bin/python \
        benchmarks/records_aggregation_benchmark.py --records 5000 --communities 50

It writes synthetic record versions (rich metadata: languages, affiliations,
funders, subjects, files with extensions; one in five a new version of an
earlier record) over the past year into a scratch records index, and their
membership history into the log: every version in ``global`` from its
creation, parents joining communities (skewed: a few big ones) some days
later, some leaving, a few versions deleted. Then it aggregates the six
records series for every community (one unit each: the whole year) and
prints per series the wall time, documents written, the slowest community
and the peak RSS; then the same again as an hourly run (bookmarks set), for
its cost after the catch-up.
"""

import argparse
import cProfile
import os
import pstats
import random
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import psutil
from invenio_search.engine import search

EXTS = ["pdf", "csv", "txt", "zip", "png", "json"]
LANGS = ["eng", "fra", "deu", "spa", "ita", "nld"]
SERIES = ["community-records-delta-added-agg", "community-records-snapshot-added-agg",
          "community-records-delta-created-agg", "community-records-snapshot-created-agg",
          "community-records-delta-published-agg",
          "community-records-snapshot-published-agg"]
MAPPING = {"dynamic": False, "properties": {
    "id": {"type": "keyword"}, "created": {"type": "date"}, "updated": {"type": "date"},
    "is_deleted": {"type": "boolean"},
    "parent": {"properties": {"id": {"type": "keyword"},
                              "access": {"properties": {"owned_by": {"properties": {
                                  "user": {"type": "keyword"}}}}},
                              "communities": {"properties": {"ids": {"type": "keyword"}}}}}}}


class PeakRSS:
    """Samples this process's RSS in a thread; ``peak`` in MB since ``reset``."""

    def __init__(self, interval=0.05):
        """Start sampling."""
        self.process, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss / 2**20)
            time.sleep(self.interval)

    def reset(self):
        """Start a new measurement."""
        self.peak = self.process.memory_info().rss / 2**20

    def stop(self):
        """Stop sampling."""
        self._stop.set()


def iso(when):
    return when.isoformat()


def generate(args, rng, start, communities):
    """``(record documents, log actions)`` of a synthetic year."""
    from invenio_stats_dashboard.services import events_log as log

    records, actions, parents = [], [], []
    weights = [1 / (k + 1) for k in range(len(communities))]
    for n in range(args.records):
        created = start + timedelta(seconds=rng.randrange(365 * 86400))
        if parents and rng.random() < 0.2:
            parent = rng.choice(parents)
            created = max(created, parent["created"] + timedelta(hours=1))
        else:
            joined = {}
            for c in set(rng.choices(communities, weights, k=rng.choice([0, 1, 1, 2]))):
                added = created + timedelta(days=rng.randrange(30), seconds=rng.randrange(86400))
                left = (added + timedelta(days=rng.randrange(1, 120))
                        if rng.random() < 0.1 else None)
                joined[c] = (added, left)
            parent = {"id": f"p{n:06d}", "owner": str(rng.choice(range(1, 60)) if
                                                      rng.random() < 0.7 else rng.randrange(60, 400)),
                      "created": created, "communities": joined, "versions": []}
            parents.append(parent)
        recid = f"r{n:06d}-{rng.randrange(16**4):04x}"
        files = rng.random() < 0.6
        entries = [{"key": f"f{k}.{e}", "ext": e, "size": rng.randrange(1, 10**7)}
                   for k, e in enumerate(rng.sample(EXTS, rng.randint(1, 3)))] if files else []
        deleted = created + timedelta(days=rng.randrange(1, 200)) if rng.random() < 0.03 else None
        year = rng.choice([str(created.year), f"{created.year}-{created.month:02d}",
                           created.date().isoformat(), str(rng.randrange(1850, 2020))])
        now = datetime.now(timezone.utc)
        doc = {
            "id": recid, "created": iso(created), "updated": iso(created),
            "is_deleted": bool(deleted and deleted < now),
            "parent": {"id": parent["id"], "access": {"owned_by": {"user": parent["owner"]}},
                       "communities": {"ids": sorted(c for c, (_a, left) in
                                                     parent["communities"].items()
                                                     if not left or left > now)}},
            "files": {"enabled": files, "entries": entries},
            "access": {"status": "open" if files else "metadata-only"},
            "metadata": {
                "publication_date": year,
                "resource_type": {"id": rng.choice(["dataset", "publication-article",
                                                    "software"]),
                                  "title": {"en": "Type"}},
                "languages": [{"id": lang, "title": {"en": lang}}
                              for lang in rng.sample(LANGS, rng.randint(0, 2))],
                "subjects": [{"id": f"subj{rng.randrange(300)}", "subject": "S"}],
                "rights": [{"id": rng.choice(["cc-by-4.0", "cc0-1.0"]), "title": {"en": "R"}}],
                "publisher": f"Press {rng.randrange(50)}",
                "creators": [{"affiliations": [{"id": f"aff{rng.randrange(200)}", "name": "A"}]}],
                "contributors": [{"affiliations": [{"id": f"aff{rng.randrange(200)}",
                                                    "name": "A"}]}],
                "funding": ([{"funder": {"id": f"fund{rng.randrange(30)}", "name": "F"}}]
                            if rng.random() < 0.4 else []),
            },
        }
        records.append(doc)
        parent["versions"].append(recid)
        end = deleted if deleted and deleted < now else None
        actions.append(log.make_event(recid, "global", "added", created, created))
        if end:
            actions.append(log.make_event(recid, "global", "removed", end, created, None, end))
        for c, (added, left) in parent["communities"].items():
            since = max(added, created)
            until = min(t for t in (left, end) if t) if (left or end) else None
            if until and until <= since:
                continue
            actions.append(log.make_event(recid, c, "added", since, created))
            if until:
                actions.append(log.make_event(recid, c, "removed", until, created))
    return records, actions


def main():
    """Generate, aggregate (catch-up, then hourly), report, clean up."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--communities", type=int, default=50)
    parser.add_argument("--prefix", default=f"bench-{uuid.uuid4().hex[:8]}-")
    parser.add_argument("--series", nargs="*", default=SERIES, help="registration keys to run")
    parser.add_argument("--profile", action="store_true",
                        help="print where the catch-up's time goes (cProfile, top 25)")
    args = parser.parse_args()
    redis = os.environ.get("ISD_REDIS_URL", "redis://127.0.0.1:6379")

    from invenio_app.factory import create_api

    app = create_api(SEARCH_INDEX_PREFIX=args.prefix, CACHE_REDIS_URL=f"{redis}/0")
    with app.app_context():
        from invenio_search.proxies import current_search_client as client

        from invenio_stats_dashboard.aggregations.runner import aggregate
        from invenio_stats_dashboard.search_indices.names import records_index
        from invenio_stats_dashboard.services import events_log as log

        rng = random.Random(7)
        today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=365)
        communities = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(args.communities)]
        try:
            started = time.monotonic()
            client.indices.create(index=f"{records_index()}-bench", body={
                "aliases": {records_index(): {}}, "mappings": MAPPING,
                "settings": {"index": {"number_of_replicas": 0}}})
            records, actions = generate(args, rng, start, communities)
            search.helpers.bulk(client, ({"_index": f"{records_index()}-bench", "_id": r["id"],
                                          "_source": r} for r in records), chunk_size=2000)
            log.write(actions)
            client.indices.refresh(index=records_index())
            log.refresh()
            print(f"setup: {len(records)} versions, {len(actions)} log documents, "
                  f"{args.communities} communities, {time.monotonic() - started:.0f} s")

            sampler = PeakRSS()
            ids = communities + ["global"]
            for label in ("catch-up (one year)", "hourly run after it"):
                print(f"-- {label}")
                for name in args.series:
                    sampler.reset()
                    t0 = time.monotonic()
                    profiler = cProfile.Profile() if args.profile and "catch" in label else None
                    if profiler:
                        profiler.enable()
                    result = aggregate([name], community_ids=ids,
                                       start_date=start.date().isoformat())["results"][0]
                    if profiler:
                        profiler.disable()
                        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
                    assert result["status"] == "success", result
                    units = [(info.get("seconds", 0), c) for c, info in
                             result["communities"].items() if info.get("days")]
                    slowest = max(units, default=(0, "-"))
                    print(f"{name:44s} {time.monotonic() - t0:7.1f} s  "
                          f"{result['docs_indexed']:6d} docs  slowest unit "
                          f"{slowest[0]:5.2f} s ({'global' if slowest[1] == 'global' else 'a community'})"
                          f"  global {result['communities']['global'].get('seconds', 0):5.2f} s"
                          f"  peak RSS {sampler.peak:.0f} MB")
            sampler.stop()
        finally:
            client.indices.delete(index=f"{args.prefix}*", ignore=[404],
                                  expand_wildcards="all")
            for name in client.indices.get_index_template(
                    name=f"{args.prefix}*", ignore=[404]).get("index_templates", []):
                client.indices.delete_index_template(name=name["name"], ignore=[404])


if __name__ == "__main__":
    main()
