# Part of invenio-stats-dashboard (MIT License).
"""Load the deterministic "legacy instance" demo data set.

    python -m invenio_stats_dashboard.demo.loader [--records 300] [--events 50000]
        [--seed 42] [--workers 2] [--reset DATA_DIR] [--summary FILE] [--timings FILE]

Run by ``./run-demo.sh`` inside an instance (``INVENIO_INSTANCE_PATH``). It
builds what an instance that ran for two years *before* installing this
package looks like: communities, records with files and versions created over
the last two years, membership changes (direct adds, accepted inclusion
requests, removals, re-additions, a bulk add), deletions and restorations, and
view/download events in the stock monthly invenio-stats indices. Everything
goes through the RDM services and invenio-stats' own pipeline; only creation
times are rewritten afterwards (``rdm.backdate_*``) to spread history over the
past.

The history is drawn first (``history.plan_history``), then carried out by
worker processes (``workers``): records in parallel, events in parallel
chunks. Progress and step times go to stdout; the applications' log goes to
stderr (``run-demo.sh`` sends it to a file).
"""

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import click

from ..utils.usage_events import expected_counts
from . import workers
from .history import plan_history, plan_usage_events

EVENT_CHUNK = 2500


class InProcess:
    """Runs the worker functions in the current app context (tests)."""

    size = 1

    def one(self, fn, *args):
        """``fn(*args)``."""
        return fn(*args)

    def each(self, fn, tasks):
        """``fn(task)`` for each task, in order."""
        return map(fn, tasks)


class Pool:
    """Runs the worker functions in spawned processes, each with its own app."""

    def __init__(self, size):
        """Start ``size`` workers now: their apps start while the caller works."""
        context = multiprocessing.get_context("spawn")
        self.size = size
        self.pool = context.Pool(size, initializer=workers.start)

    def one(self, fn, *args):
        """``fn(*args)`` in one worker."""
        return self.pool.apply(fn, args)

    def each(self, fn, tasks):
        """``fn(task)`` for each task, across the workers, as they complete."""
        return self.pool.imap_unordered(fn, tasks)

    def close(self, failed=False):
        """Stop the workers (at once after a failure)."""
        if failed:
            self.pool.terminate()
        else:
            self.pool.close()
        self.pool.join()


class Steps:
    """Prints each step's duration and appends it to a timings file."""

    def __init__(self, echo=click.echo, timings=None):
        """``timings``: a file receiving ``label<TAB>seconds<TAB>load average`` lines."""
        self.echo, self.timings = echo, timings

    @contextmanager
    def __call__(self, label):
        """Time the block."""
        start = time.monotonic()
        yield
        seconds = time.monotonic() - start
        self.echo(f"    {label}: {seconds:.0f} s")
        if self.timings:
            with open(self.timings, "a", encoding="utf-8") as out:
                out.write(f"{label}\t{seconds:.1f}\t{os.getloadavg()[0]:.2f}\n")


@dataclass
class Loaded:
    """What :func:`load` did: the counts, the plan and the id of every planned version."""

    summary: dict
    history: object
    version_ids: list


def _progress(label, length):
    return click.progressbar(length=length, label=label, show_pos=True, width=36)


def load(n_records=300, n_events=50_000, seed=42, run=None, steps=None, echo=click.echo,
         now=None):
    """Create the demo data set; returns a :class:`Loaded`."""
    run = run or InProcess()
    steps = steps or Steps(echo=lambda *_: None)
    now = now or datetime.now(timezone.utc).replace(microsecond=0)
    history = plan_history(n_records, seed, now)
    stats = Counter()

    with steps("vocabularies, users, communities"):
        communities = run.one(workers.prepare, history.origin)
    with steps("records, versions, memberships"):
        ids = {}
        with _progress("Records", len(history.records)) as bar:
            tasks = [(plan, communities) for plan in history.records]
            for n, version_ids, counts in run.each(workers.create_record, tasks):
                ids[n] = version_ids
                stats.update(counts)
                bar.update(1)
    with steps("bulk add, deletions, restorations"):
        version_ids = [ids[n][i] for n, i, _ in history.versions]
        counts, skipped = run.one(workers.finish, history, version_ids, communities)
        stats.update(counts)
        for note in skipped:
            echo(note)
    with steps("sibling versions indexed, index checked against the database"):
        list(run.each(workers.index_queued, range(run.size)))
        targets = run.one(workers.event_targets, history, version_ids)

    with steps("usage events (invenio-stats' indexer, parallel chunks)"):
        planned = plan_usage_events(targets, n_events, seed, now)
        expected = expected_counts(planned)
        chunks = [(event_type, events[i:i + EVENT_CHUNK])
                  for event_type, events in planned.items()
                  for i in range(0, len(events), EVENT_CHUNK)]
        with _progress("Events ", sum(len(c) for _, c in chunks)) as bar:
            for _event_type, published, _indexed in run.each(workers.index_events, chunks):
                bar.update(published)
        found = run.one(workers.count_events, sorted(expected), {t.recid for t in targets})
        if found != dict(expected):
            raise RuntimeError(f"the event indices hold {sum(found.values())} events, "
                               f"{sum(expected.values())} were planned")
    stats["view_events"] = len(planned["record-view"])
    stats["download_events"] = len(planned["file-download"])
    stats["months_with_events"] = len({m for _, m in expected})
    stats["communities"] = len(communities)
    return Loaded(dict(stats), history, version_ids)


def main(argv=None):
    """Command-line entry: optionally reset the instance's storage, then load."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reset", metavar="DATA_DIR",
                        help="drop the database and create the storage first")
    parser.add_argument("--summary", help="write the JSON summary to this file")
    parser.add_argument("--timings", help="append 'step<TAB>seconds<TAB>load' lines to this file")
    args = parser.parse_args(argv)

    steps = Steps(timings=args.timings)
    pool = Pool(args.workers)  # the workers' apps start while the storage is reset
    try:
        if args.reset:
            from invenio_app.factory import create_api

            from .instance import reset_storage

            with steps("database, indices, queues, files location"):
                reset_storage(create_api(), args.reset)
        summary = load(args.records, args.events, args.seed, run=pool, steps=steps).summary
    except BaseException:
        pool.close(failed=True)
        raise
    pool.close()
    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as out:
            json.dump(summary, out, indent=2, sort_keys=True)
    click.echo(f"Loaded {summary['records']} records ({summary['records'] + summary.get('new_versions', 0)}"
               f" versions), {summary['communities']} communities, {summary['view_events']} views"
               f" and {summary['download_events']} downloads over {summary['months_with_events']}"
               " months.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
