# Part of invenio-stats-dashboard (MIT License).
"""One aggregation run: which series, which communities, preconditions, the report.

Used by the Celery task, the CLI and the registered aggregators alike. Per
(series, community) a run computes one unit (at most the catch-up interval);
series run in the scheduled order, each snapshot after its delta. The run
never starts a backfill or a migration by itself (fix G19): a missing
membership log or usage events that are not migrated yet fail the series
concerned with a message saying what to run.
"""

import time

from flask import current_app

from ..exceptions import (
    CommunityEventsNotInitializedError,
    InvalidInputError,
    UsageEventsNotMigratedError,
)
from ..services import events_log as log
from ..services.health import HealthCheck
from . import documents as docs
from . import engine
from .mappings import put_templates
from .series import BY_NAME, in_order


def resolve_series(names):
    """Series objects for registration keys (``InvalidInputError`` on unknown ones)."""
    unknown = [n for n in names or () if n not in BY_NAME]
    if unknown:
        raise InvalidInputError(f"Unknown aggregator(s): {', '.join(unknown)} "
                                f"(known: {', '.join(sorted(BY_NAME))})")
    return in_order(names)


def communities_to_aggregate(community_ids=None):
    """Explicit ids as given; else every community whose dashboard is enabled, and ``global``.

    With ``STATS_DASHBOARD_COMMUNITY_OPT_IN`` (default) only communities whose
    ``stats:dashboard_enabled`` is true (aggregations.md §8.4); deleted
    communities are left out.
    """
    if community_ids:
        return list(community_ids)
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


def check_preconditions(ctx, series):
    """Raise when the series' inputs are not there yet (no backfill or migration here)."""
    alias = log.alias_name()
    if not (ctx.client.indices.exists_alias(name=alias)
            and ctx.client.count(index=alias)["count"]):
        raise CommunityEventsNotInitializedError(
            "The community events log is empty: run 'invenio community-stats "
            "community-events generate' (seed step 3b) first.")
    if series.family == "usage" and series.is_delta:
        from ..services.usage_reindexing.months import EVENT_TYPES, discover

        waiting = [f"{s.event_type} {s.month}" for t in EVENT_TYPES
                   for s in discover(ctx.client, t) if s.needs_migration]
        if waiting:
            raise UsageEventsNotMigratedError(
                f"{len(waiting)} month(s) of usage events are not migrated yet "
                f"(e.g. {', '.join(waiting[:3])}): run 'invenio community-stats "
                "usage-events migrate' (seed step 3c) first.")


def aggregate(series_names=None, community_ids=None, start_date=None, end_date=None,
              update_bookmark=True, ignore_bookmark=False, progress=None, stop=None):
    """Run the series; returns ``{"results": [...], "total_duration": s}``.

    One result per series: ``aggregator``, ``status`` (``success``, ``failed``
    or ``stopped``), ``docs_indexed``, ``errors``, ``error_details``,
    ``communities_count``, ``communities_processed`` and ``communities``
    (per community: days, first/last day, documents, seconds, skipped).
    """
    started = time.monotonic()
    ctx = engine.Context()
    put_templates(ctx.client, ctx.subcount_configs)
    series_list = resolve_series(series_names)
    communities = communities_to_aggregate(community_ids)
    settings = current_app.config
    health = HealthCheck(settings.get("STATS_DASHBOARD_REINDEXING_MAX_MEMORY_PERCENT", 85),
                         settings.get("STATS_DASHBOARD_REINDEXING_MAX_HEAP_PERCENT", 90),
                         ctx.client).check
    results, flagged = [], set()
    for series in series_list:
        report = {"aggregator": series.name, "status": "success", "docs_indexed": 0,
                  "errors": 0, "error_details": [], "communities_count": len(communities),
                  "communities_processed": 0, "communities": {}}
        results.append(report)
        try:
            check_preconditions(ctx, series)
        except (CommunityEventsNotInitializedError, UsageEventsNotMigratedError) as exc:
            report.update(status="failed", errors=1, error_details=[str(exc)])
            continue
        for community_id in communities:
            unit = engine.plan(ctx, series, community_id, start_date, end_date,
                               ignore_bookmark)
            if unit is None:
                report["communities"][community_id] = {"days": 0, "skipped": "up to date"}
                continue
            result = _run(ctx, unit, update_bookmark, stop, health, report)
            if progress:
                progress(series.name, community_id, result)
            if result.stopped:
                report["status"] = "stopped"
                report["error_details"].append(result.stopped)
                break
            flagged.update((community_id, y) for y in result.years if y < ctx.today.year)
        engine.refresh(ctx, [series])
    flag_updated_years(flagged)
    return {"results": results, "total_duration": round(time.monotonic() - started, 3)}


def _run(ctx, unit, update_bookmark, stop, health, report):
    try:
        result = engine.run_unit(ctx, unit, update_bookmark, stop, health)
    except Exception as exc:  # one community's failure does not stop the others
        current_app.logger.exception("aggregation unit %s failed", unit.lock_name)
        report["status"] = "failed"
        report["errors"] += 1
        report["error_details"].append(f"{unit.community_id}: {type(exc).__name__}: {exc}")
        return engine.UnitResult(unit)
    report["docs_indexed"] += result.written
    report["communities_processed"] += 0 if result.skipped else 1
    report["communities"][unit.community_id] = {
        "days": len(unit.days), "first_day": unit.first.isoformat(),
        "last_day": unit.last.isoformat(), "docs_indexed": result.written,
        "seconds": result.seconds, "skipped": result.skipped, "stopped": result.stopped,
        "index": docs.alias_name(unit.series)}
    return result


def flag_updated_years(pairs):
    """``<community>_agg_updated_<year>`` for every past year a run rewrote (G23).

    The response cache regenerates those years; 7 days TTL (upstream's).
    """
    if not pairs:
        return
    client = registry_client()
    now = str(time.time())
    for community_id, year in sorted(pairs):
        client.set(f"{community_id}_agg_updated_{year}", now, ex=7 * 86400)


def registry_client():
    """Redis of the job-flag registry: ``STATS_CACHE_REDIS_URL``, else ``CACHE_REDIS_URL``
    with ``STATS_AGG_REGISTRY_REDIS_DB`` as its database (config.md §9)."""
    import redis

    config = current_app.config
    url = config.get("STATS_CACHE_REDIS_URL")
    if not url:
        base = (config.get("CACHE_REDIS_URL") or "redis://localhost:6379/0").rsplit("/", 1)[0]
        url = f"{base}/{int(config.get('STATS_AGG_REGISTRY_REDIS_DB', 8))}"
    return redis.Redis.from_url(url)
