# Part of invenio-stats-dashboard (MIT License).
"""One aggregation run: which series, which communities, preconditions, the report.

Used by the Celery task, the CLI and the registered aggregators alike. The
run's communities go into a Redis work list (:mod:`.fanout`) that this
process and, when asked, Celery workers take from; per community a worker
runs the series in the scheduled order, each snapshot after its delta. Per
(series, community) a run computes one unit (at most the catch-up
interval), a catch-up run (``until_caught_up``) or a recompute
(``ignore_bookmark``) everything up to the end.

The run never starts a backfill or a migration by itself (fix G19): a
missing membership log or usage events that are not migrated yet fail the
series concerned with a message saying what to run. A cluster that stops
answering, a stop request or a failed health check stop the whole run; the
bookmarks stay at the last complete day.
"""

import os
import socket
import time

from flask import current_app

from ..exceptions import (
    CommunityEventsNotInitializedError,
    InvalidInputError,
    UsageEventsNotMigratedError,
)
from ..services import events_log as log
from ..services.response_cache import invalidate_rewritten, shared_client
from ..services.health import HealthCheck
from . import engine, fanout
from .mappings import put_templates
from .series import BY_NAME, get, in_order


def resolve_series(names):
    """Series objects for registration keys (``InvalidInputError`` on unknown ones)."""
    unknown = [n for n in names or () if n not in BY_NAME]
    if unknown:
        raise InvalidInputError(f"Unknown aggregator(s): {', '.join(unknown)} "
                                f"(known: {', '.join(sorted(BY_NAME))})")
    return in_order(names)


def resolve_dates(start_date=None, end_date=None):
    """``(start, end)`` as dates (``InvalidInputError`` when malformed or reversed)."""
    from ..services.community_events import parse_date

    start, end = parse_date(start_date, "start date"), parse_date(end_date, "end date")
    if start and end and start > end:
        raise InvalidInputError("The start date is after the end date.")
    return (start.date() if start else None), (end.date() if end else None)


def communities_to_aggregate(community_ids=None):
    """Explicit ids or slugs (resolved, as given); else every enabled community and ``global``.

    With ``STATS_DASHBOARD_COMMUNITY_OPT_IN`` (default) only communities whose
    ``stats:dashboard_enabled`` is true (aggregations.md §8.4); deleted
    communities are left out.
    """
    if community_ids:
        from ..services.community_events import resolve_community_ids

        return list(dict.fromkeys(resolve_community_ids(community_ids)))
    from invenio_communities.communities.records.models import CommunityMetadata
    from invenio_communities.communities.records.systemfields.deletion_status import (
        CommunityDeletionStatusEnum,
    )

    opt_in = current_app.config.get("STATS_DASHBOARD_COMMUNITY_OPT_IN", True)
    ids = []
    rows = CommunityMetadata.query.filter(
        CommunityMetadata.deletion_status == CommunityDeletionStatusEnum.PUBLISHED)
    for row in rows.order_by(CommunityMetadata.created):
        fields = (row.json or {}).get("custom_fields") or {}
        if not opt_in or fields.get("stats:dashboard_enabled") is True:
            ids.append(str(row.id))
    return ids + [log.GLOBAL]


#: ``usage-events status`` states of a month the aggregations can read
MIGRATED = ("completed", "enriched live", "enriched (no migration bookmark)")


def check_preconditions(ctx, series):
    """Raise when the series' inputs are not there yet (no backfill or migration here)."""
    alias = log.alias_name()
    if not (ctx.client.indices.exists_alias(name=alias)
            and ctx.client.count(index=alias)["count"]):
        raise CommunityEventsNotInitializedError(
            "The community events log is empty: run 'invenio community-stats "
            "community-events generate' (seed step 3b) first.")
    if series.family == "usage" and series.is_delta:
        from ..proxies import current_event_reindexing_service

        # the migration's own verdict: a legacy month stays in place after it
        # was migrated (until cleanup-old-indices), so its presence says nothing
        rows = current_event_reindexing_service.count_total_events()
        waiting = [f"{r['event_type']} {r['month']}" for r in rows if r["state"] not in MIGRATED]
        if waiting:
            raise UsageEventsNotMigratedError(
                f"{len(waiting)} month(s) of usage events are not migrated yet "
                f"(e.g. {', '.join(waiting[:3])}): run 'invenio community-stats "
                "usage-events migrate' (seed step 3c) first.")


def aggregate(series_names=None, community_ids=None, start_date=None, end_date=None,
              update_bookmark=True, ignore_bookmark=False, progress=None, stop=None,
              workers=1, until_caught_up=False, dispatch=None):
    """Check the input (before anything is written), then :func:`run`.

    Unknown series, communities and malformed or reversed dates raise
    :class:`InvalidInputError`. Returns :func:`run`'s report.
    """
    series_list = resolve_series(series_names)
    start, end = resolve_dates(start_date, end_date)
    communities = communities_to_aggregate(community_ids)
    return run([s.name for s in series_list], communities, start, end, update_bookmark,
               ignore_bookmark, progress, stop, workers, until_caught_up, dispatch)


def run(series_names, communities, start=None, end=None, update_bookmark=True,
        ignore_bookmark=False, progress=None, stop=None, workers=1, until_caught_up=False,
        dispatch=None):
    """Run the series for ``communities`` (ids as the inputs have them); the report.

    ``workers`` > 1 asks ``dispatch(run_id, n)`` to start ``n`` more workers
    on the run (the Celery task does); this process works too and waits for
    the others. One result per series: ``aggregator``, ``status``
    (``success``, ``failed`` or ``stopped``), ``docs_indexed``, ``errors``,
    ``error_details``, ``communities_count``, ``communities_processed``,
    ``caught_up`` and ``communities`` (per community: days, first/last
    day, documents, seconds, skipped, stopped, error, worker).
    """
    started = time.monotonic()
    series_list = resolve_series(series_names)
    ctx = engine.Context()
    put_templates(ctx.client, ctx.subcount_configs)
    failed = {}
    for series in series_list:
        try:
            check_preconditions(ctx, series)
        except (CommunityEventsNotInitializedError, UsageEventsNotMigratedError) as exc:
            failed[series.name] = str(exc)
    runnable = [s.name for s in series_list if s.name not in failed]
    outcomes, stopped = {}, None
    if runnable and communities:
        queue = fanout.RunQueue()
        ordered = sorted(communities, key=lambda c: c != log.GLOBAL)  # the largest first
        queue.create(ordered, {
            "series": runnable, "start": start and str(start), "end": end and str(end),
            "update_bookmark": update_bookmark, "ignore_bookmark": ignore_bookmark,
            "until_caught_up": until_caught_up, "now": ctx.now})
        try:
            if workers > 1 and dispatch is not None:
                dispatch(queue.run_id, workers - 1)

            def work_here():
                work(queue.run_id, progress=progress, stop=stop)

            work_here()
            fanout.wait(queue, work_here, stop=lambda: _propagate(queue, stop))
            outcomes, stopped = queue.outcomes(), queue.stop_reason()
        finally:
            queue.delete()
    return build_report(series_list, communities, outcomes, failed, stopped,
                        time.monotonic() - started)


def _propagate(queue, stop):
    why = stop() if stop else None
    if why:
        queue.request_stop(why)
    return why


def work(run_id, progress=None, stop=None):
    """Take communities of run ``run_id`` until none is left; returns how many were done.

    The entry point of every worker of a run (the starting process and the
    ``aggregate_run_worker`` tasks).
    """
    queue = fanout.RunQueue(run_id)
    params = queue.params()
    if params is None:  # the run is over
        return 0
    ctx = engine.Context(now=params["now"])
    series_list = [get(name) for name in params["series"]]
    settings = current_app.config
    health = HealthCheck(settings.get("STATS_DASHBOARD_REINDEXING_MAX_MEMORY_PERCENT", 85),
                         settings.get("STATS_DASHBOARD_REINDEXING_MAX_HEAP_PERCENT", 90),
                         ctx.client).check
    guard = engine.Guard(lambda: _propagate(queue, stop) or queue.stop_reason(), health)
    done = 0
    with fanout.Worker(queue) as worker:
        for community_id in worker.communities():
            outcome = chain(ctx, community_id, series_list, params, guard, progress)
            queue.finish(community_id, outcome)
            done += 1
            for info in outcome["series"].values():
                if info["unavailable"]:
                    queue.request_stop(f"search cluster unavailable: {info['error']}")
                elif info["stopped"]:
                    queue.request_stop(info["stopped"])
    return done


def chain(ctx, community_id, series_list, params, guard, progress=None):
    """One community: every series of the run, in two steps; its outcome (JSON-able).

    Each delta and its snapshot are planned and computed under their chain
    lock; when another run holds it, that run does them (it planned from the
    bookmarks as they were when it took the lock), and this one skips them.
    The community's chain locks are taken first, its bookmarks read in one
    multi-get; then the deltas run, one commit (:class:`~.batch.Batch`:
    one refresh, one bookmark write) makes their documents searchable and
    their bookmarks true, then the snapshots (which read the deltas) run
    and a second commit ends the chain before its locks are released.
    """
    registry = registry_client()
    # "<id>_agg_running", not "<id>_agg": a scan for "<id>_agg*" must not
    # match the agg_updated_<year> flags (gap 18)
    registry.set(f"{community_id}_agg_running", str(time.time()), ex=7200)
    if not any(registry.scan_iter(match=f"{community_id}_first_run*", count=100)):
        registry.set(f"{community_id}_first_run", "in_progress")
    outcome = {"worker": f"{socket.gethostname()}:{os.getpid()}", "series": {}}
    held = []
    ctx.open_chain(community_id)
    try:
        for group in engine.chains(series_list):
            lock = engine.hold(group[0], community_id)
            if lock is None:
                for series in group:
                    outcome["series"][series.name] = _info(
                        skipped="another run is computing it")
            else:
                held.append((group, lock))
        mine = [s for group, _ in held for s in group]
        related = mine + [get(s.depends_on) for s in mine if s.depends_on]
        related += [d for s in mine for d in engine.dependents(s)]
        try:
            ctx.marks.load(community_id, related)
        except Exception as exc:  # noqa: BLE001 - reported like a failed plan
            return _failed(outcome, mine, exc)
        for snapshots in (False, True):  # the deltas' step, then the snapshots'
            batch = engine.Batch(ctx)
            step = [(s, lock) for group, lock in held for s in group
                    if (not s.is_delta) == snapshots]
            done = []
            for series, lock in step:
                info = outcome["series"][series.name] = _series(
                    ctx, community_id, series, params, guard, progress, lock, batch)
                done.append(series)
                if info["stopped"] or info["unavailable"]:
                    break
            try:
                batch.commit()
            except Exception as exc:  # noqa: BLE001 - nothing bookmarked: re-computed
                return _failed(outcome, done, exc)
            if any(outcome["series"][s.name]["stopped"] or
                   outcome["series"][s.name]["unavailable"] for s in done):
                return outcome
    finally:
        for _, lock in held:
            lock.release()
        ctx.marks.forget(community_id)
        ctx.close_chain(community_id)
        registry.delete(f"{community_id}_agg_running")
    return outcome


def _failed(outcome, series_list, exc):
    """Report ``exc`` (a failed bookmark read or commit) on each series of the step."""
    current_app.logger.warning("aggregation commit failed", exc_info=True)
    message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    for series in series_list:
        info = outcome["series"].setdefault(series.name, _info())
        info.update(error=info["error"] or message, unavailable=engine.unavailable(exc),
                    caught_up=False)
    return outcome


def _info(**values):
    info = {"units": 0, "days": 0, "docs_indexed": 0, "first_day": None, "last_day": None,
            "seconds": 0.0, "skipped": None, "stopped": None, "error": None,
            "unavailable": False, "caught_up": False}
    info.update(values)
    return info


def _series(ctx, community_id, series, params, guard, progress, lock, batch):
    info = _info()
    try:
        units = engine.plan(ctx, series, community_id, params["start"], params["end"],
                            params["ignore_bookmark"])
    except Exception as exc:  # noqa: BLE001 - one community's failure is reported
        current_app.logger.warning("planning %s for %s failed", series.name, community_id,
                                   exc_info=True)
        info.update(error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                    unavailable=engine.unavailable(exc))
        return info
    mark_empty(ctx, community_id, series, units)
    if not units:
        info.update(skipped="nothing to aggregate", caught_up=True)
        return info
    whole = params["until_caught_up"] or params["ignore_bookmark"] or units[0].lower
    todo = units if whole else units[:1]
    for unit in todo:
        result = engine.run_unit(ctx, unit, lock, params["update_bookmark"], guard, progress,
                                 batch)
        if len(todo) > 1 and result.error is None:  # catch-up, recompute: unit by unit
            try:
                batch.commit()
            except Exception as exc:  # noqa: BLE001 - nothing bookmarked: re-computed
                result.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
                result.unavailable = engine.unavailable(exc)
        flag_updated_years((community_id, y) for y in result.years if y < ctx.today.year)
        invalidate_rewritten((community_id, y) for y in result.years)
        info["units"] += 1
        info["docs_indexed"] += result.written
        info["seconds"] = round(info["seconds"] + result.seconds, 3)
        if result.last_day is not None:
            info["first_day"] = info["first_day"] or unit.first.isoformat()
            info["last_day"] = result.last_day.isoformat()
            info["days"] += (result.last_day - unit.first).days + 1
        info.update(stopped=result.stopped, error=result.error,
                    unavailable=result.unavailable)
        if not result.completed:
            return info
    info["caught_up"] = len(todo) == len(units)
    return info


def build_report(series_list, communities, outcomes, failed, stopped, seconds):
    """The run's report (spec §8.1 shape plus ``caught_up`` and ``stopped``)."""
    results = []
    for series in series_list:
        report = {"aggregator": series.name, "status": "success", "docs_indexed": 0,
                  "errors": 0, "error_details": [], "communities_count": len(communities),
                  "communities_processed": 0, "communities": {}, "caught_up": True,
                  "seconds": 0.0}
        results.append(report)
        if series.name in failed:
            report.update(status="failed", errors=1, error_details=[failed[series.name]],
                          caught_up=False)
            continue
        for community_id in communities:
            outcome = outcomes.get(community_id) or {}
            info = (outcome.get("series") or {}).get(series.name)
            if info is None:  # the run stopped before this community got here
                report["caught_up"] = False
                continue
            info = dict(info, worker=outcome.get("worker"))
            report["communities"][community_id] = info
            report["docs_indexed"] += info["docs_indexed"]
            report["seconds"] += info["seconds"]
            report["caught_up"] &= info["caught_up"]
            if info["error"]:
                report["errors"] += 1
                report["error_details"].append(f"{community_id}: {info['error']}")
            elif not info["skipped"] or info["skipped"] == "nothing to aggregate":
                report["communities_processed"] += 1
        if report["errors"]:
            report["status"] = "failed"
        elif stopped or any(i["stopped"] for i in report["communities"].values()):
            report["status"] = "stopped"
        report["duration_formatted"] = f"{report['seconds']:.1f} s"
    return {"results": results, "total_duration": round(seconds, 3), "stopped": stopped,
            "caught_up": all(r["caught_up"] for r in results)}


def flag_updated_years(pairs):
    """``<community>_agg_updated_<year>`` for every past year a run rewrote (G23).

    The response cache regenerates those years; 7 days TTL (upstream's).
    """
    pairs = sorted(set(pairs))
    if not pairs:
        return
    client = registry_client()
    now = str(time.time())
    for community_id, year in pairs:
        client.set(f"{community_id}_agg_updated_{year}", now, ex=7 * 86400)


def mark_empty(ctx, community_id, series, units):
    """``<id>_agg_empty_<series>`` = today while a series has nothing to aggregate.

    A community without source events (e.g. no views yet) never gets a
    bookmark; the response cache's completeness gate reads this flag instead
    (gap 19). Removed as soon as the series has work.
    """
    key = f"{community_id}_agg_empty_{series.name}"
    if units:
        registry_client().delete(key)
    elif ctx.bookmark(series, community_id) is None:
        registry_client().set(key, ctx.today.isoformat())


def registry_client():
    """Redis of the job-flag registry: ``STATS_CACHE_REDIS_URL``, else ``CACHE_REDIS_URL``
    with ``STATS_AGG_REGISTRY_REDIS_DB`` as its database (config.md §9)."""

    config = current_app.config
    url = config.get("STATS_CACHE_REDIS_URL")
    if not url:
        base = (config.get("CACHE_REDIS_URL") or "redis://localhost:6379/0").rsplit("/", 1)[0]
        url = f"{base}/{int(config.get('STATS_AGG_REGISTRY_REDIS_DB', 8))}"
    return shared_client(url)
