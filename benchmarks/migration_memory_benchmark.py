# Part of invenio-stats-dashboard (MIT License).
"""Migration memory against the number of distinct records in a month.

Self-contained: runs against the local OpenSearch under its own index prefix
(``bench-<hex>-``, deleted at the end), so it touches no instance's indices:

    .venv/bin/python benchmarks/migration_memory_benchmark.py --records 50000

It writes ``--records`` + 500 synthetic RDM record documents (rich metadata:
localised titles, affiliations, funders, rights) into a scratch records
index and a membership log, then two stock-shaped months of views with the
*same number of events*:

* the floor month: those events over 500 records;
* the wide month: one event per record, ``--records`` distinct records.

Each month is migrated with ``EventReindexingService`` while a thread samples
the process's RSS every 20 ms. The wide month's peak RSS is printed as a
ratio of the floor month's peak, measured in the same run: memory that grows
with distinct records shows as a ratio above 1.
"""

import argparse
import random
import threading
import time
import uuid

import psutil
from invenio_search.engine import search

LANGS = ["eng", "fra", "deu", "spa", "ita", "nld", "por", "pol"]


def record_doc(n, rng):
    """A published record's indexed document, with per-record strings (nothing shared)."""
    recid = f"bench{n:07d}-{rng.randrange(16**6):06x}"
    aff = [{"id": f"0aff{n:05d}{k}", "name": f"University {n} department {k}"}
           for k in range(3)]
    return {
        "id": recid, "parent": {"id": f"p{recid}"},
        "access": {"status": rng.choice(["open", "restricted", "metadata-only"])},
        "files": {"types": rng.sample(["pdf", "csv", "txt", "zip", "png"], 2)},
        "custom_fields": {"journal:journal": {"title": f"Journal of benchmark {n % 997}"}},
        "metadata": {
            "resource_type": {"id": "publication-article", "title": {
                "en": f"Journal article {n}", "de": f"Zeitschriftenartikel {n}"}},
            "languages": [{"id": lang, "title": {"en": f"{lang} language {n}"}}
                          for lang in rng.sample(LANGS, 2)],
            "rights": [{"id": "cc-by-4.0", "title": {"en": f"Creative Commons {n}"},
                        "description": {"en": f"Permits use with attribution {n}"},
                        "props": {"url": f"https://example.org/licence/{n}",
                                  "scheme": "spdx"}}],
            "publisher": f"Benchmark Press {n}",
            "creators": [{"person_or_org": {"name": f"Author {n}-{k}"}, "affiliations": aff}
                         for k in range(2)],
            "contributors": [{"person_or_org": {"name": f"Editor {n}"},
                              "affiliations": aff[:1]}],
            "funding": [{"funder": {"id": f"0fund{n:05d}", "name": f"Funder {n}"},
                         "award": {"title": {"en": f"Grant {n}"}, "number": str(n)}}],
            "subjects": [{"id": f"subj{n}", "subject": f"Subject {n}", "scheme": "x"}],
        },
    }


class PeakRSS:
    """Samples this process's RSS in a thread; ``peak`` in MB since ``reset``."""

    def __init__(self, interval=0.02):
        """Start sampling."""
        self.process, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss / 2**20)
            time.sleep(self.interval)

    def reset(self):
        """Start a new measurement from the current RSS."""
        self.peak = self.process.memory_info().rss / 2**20

    def stop(self):
        """Stop sampling."""
        self._stop.set()
        self._thread.join()


def main():
    """Generate, migrate the floor month then the wide month, report, clean up."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=50_000, help="distinct records")
    parser.add_argument("--floor-records", type=int, default=500)
    parser.add_argument("--prefix", default=f"bench-{uuid.uuid4().hex[:8]}-")
    args = parser.parse_args()

    from invenio_app.factory import create_api

    app = create_api(SEARCH_INDEX_PREFIX=args.prefix)
    with app.app_context():
        from invenio_search.proxies import current_search_client as client
        from invenio_search.utils import prefix_index

        from invenio_stats_dashboard.proxies import current_event_reindexing_service as svc
        from invenio_stats_dashboard.search_indices.names import records_index
        from invenio_stats_dashboard.services import events_log as log

        rng = random.Random(1)
        floor_month, wide_month = "2019-01", "2019-02"
        try:
            started = time.monotonic()
            client.indices.create(index=f"{records_index()}-bench", body={
                "aliases": {records_index(): {}},
                "settings": {"index": {"number_of_replicas": 0, "refresh_interval": "-1"}},
                "mappings": {"dynamic": False, "properties": {"id": {"type": "keyword"}}}})
            recids = []

            def records():
                for n in range(args.records + args.floor_records):
                    doc = record_doc(n, rng)
                    recids.append(doc["id"])
                    yield {"_index": f"{records_index()}-bench", "_id": doc["id"],
                           "_source": doc}

            search.helpers.bulk(client, records(), chunk_size=2000, request_timeout=300)
            client.indices.refresh(index=records_index())
            floor_ids, wide_ids = recids[args.records:], recids[:args.records]
            log.write((log.make_event(r, "global", "added", "2018-06-01T00:00:00")
                       for r in recids), refresh=True)

            def events(month, ids):
                for n in range(args.records):
                    recid = ids[n % len(ids)]
                    yield {"_index": prefix_index(f"events-stats-record-view-{month}"),
                           "_id": f"{month}-{n}", "_source": {
                               "timestamp": f"{month}-{1 + n % 28:02d}T"
                                            f"{n % 24:02d}:{n % 60:02d}:{n % 59:02d}",
                               "recid": recid, "parent_recid": f"p{recid}",
                               "unique_id": f"ui_{recid}", "visitor_id": f"v{n % 5000}",
                               "unique_session_id": f"s{n}", "country": "GB",
                               "is_robot": False, "is_machine": False, "via_api": False}}

            for month, ids in ((floor_month, floor_ids), (wide_month, wide_ids)):
                search.helpers.bulk(client, events(month, ids), chunk_size=5000,
                                    request_timeout=300)
            client.indices.refresh(index=prefix_index("events-stats-record-view-*"))
            print(f"setup: {len(recids)} records, 2 x {args.records} events "
                  f"in {time.monotonic() - started:.0f} s")

            sampler, peaks = PeakRSS(), {}
            for name, month in (("floor", floor_month), ("wide", wide_month)):
                sampler.reset()
                before = sampler.peak
                started = time.monotonic()
                report = svc.reindex_events(event_types=["view"], month_filter=month)
                assert report["completed"], report
                peaks[name] = sampler.peak
                print(f"{name:5s} month {month}: {report['total_processed']} events, "
                      f"{len(floor_ids if name == 'floor' else wide_ids)} distinct records, "
                      f"{time.monotonic() - started:.1f} s, RSS {before:.0f} MB -> "
                      f"peak {sampler.peak:.0f} MB")
            sampler.stop()
            print(f"peak RSS wide / floor: {peaks['wide'] / peaks['floor']:.2f} "
                  f"(+{peaks['wide'] - peaks['floor']:.0f} MB for "
                  f"{args.records - args.floor_records} more distinct records)")
        finally:
            client.indices.delete(index=f"{args.prefix}*", ignore=[404],
                                  expand_wildcards="all")
            for name in client.indices.get_index_template(
                    name=f"{args.prefix}*", ignore=[404]).get("index_templates", []):
                client.indices.delete_index_template(name=name["name"], ignore=[404])


if __name__ == "__main__":
    main()
