# Part of invenio-stats-dashboard (MIT License).
"""``invenio community-stats usage-events migrate | migrate-background | status``."""

import re
import threading

import click

from ..exceptions import InvalidInputError
from ..proxies import current_event_reindexing_service
from ..services.usage_reindexing.months import EVENT_TYPES
from .common import (
    Progress,
    command_errors,
    forward_options,
    invenio_argv,
    launch_background,
    require_enabled,
)

PROCESS_NAME = "event-migration"
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def validate_months(months):
    """``YYYY-MM`` or ``YYYY-MM:YYYY-MM`` items, else ``InvalidInputError``."""
    for item in months:
        parts = item.split(":")
        if len(parts) > 2 or not all(MONTH.match(p) for p in parts) or parts != sorted(parts):
            raise InvalidInputError(f"Malformed month '{item}' (expected YYYY-MM or YYYY-MM:YYYY-MM).")
    return list(months)


def migrate_options(func):
    """Options shared by ``migrate`` and ``migrate-background``."""
    for decorator in reversed([
        click.option("--event-types", "-e", multiple=True,
                     type=click.Choice(sorted(EVENT_TYPES)), help="view and/or download."),
        click.option("--max-batches", "-b", type=click.IntRange(min=1),
                     help="Batches per month per run (default STATS_DASHBOARD_REINDEXING_MAX_BATCHES)."),
        click.option("--batch-size", type=click.IntRange(1, 10_000),
                     help="Events per batch (default STATS_DASHBOARD_REINDEXING_BATCH_SIZE)."),
        click.option("--max-memory-percent", type=click.IntRange(1, 100),
                     help="Stop above this memory use (default from config)."),
        click.option("--delete-old-indices", is_flag=True,
                     help="Delete each stock index once its month is validated."),
        click.option("--fresh-start", is_flag=True, help="Forget bookmarks; start months over."),
        click.option("--months", "-m", multiple=True, help="YYYY-MM or YYYY-MM:YYYY-MM."),
    ]):
        func = decorator(func)
    return func


@click.group(name="usage-events")
def usage_events_cli():
    """View and download events: migration to enriched indices."""


@usage_events_cli.command("migrate")
@migrate_options
@click.option("--dry-run", is_flag=True, help="Only list what would be migrated.")
@click.option("--async", "run_async", is_flag=True, help="Queue the Celery task and return.")
@command_errors
def migrate_command(event_types, max_batches, batch_size, max_memory_percent,
                    delete_old_indices, fresh_start, months, dry_run, run_async):
    """Copy legacy monthly indices into enriched -v2.0.0 indices (seed step 3c)."""
    require_enabled()
    months = validate_months(months)
    if run_async:
        from ..tasks.usage_reindexing_tasks import reindex_usage_events_with_metadata

        task = reindex_usage_events_with_metadata.delay(
            event_types=list(event_types) or None, max_batches=max_batches,
            batch_size=batch_size, max_memory_percent=max_memory_percent,
            delete_old_indices=delete_old_indices, fresh_start=fresh_start,
            months=months or None)
        click.echo(f"Task started with ID: {task.id}")
        return
    service = current_event_reindexing_service._get_current_object()
    rows = [r for r in service.count_total_events(list(event_types) or None, months or None)
            if r["state"] not in ("enriched live",)]
    if dry_run:
        click.echo("DRY RUN - No changes will be made")
        for row in rows:
            click.echo(f"  {row['source_index']}: {row['old_count']} events, "
                       f"{row['remaining_count']} remaining ({row['state']})")
        return
    progress = MonthProgress("Migrating events",
                             sum(r["old_count"] if fresh_start else r["remaining_count"]
                                 for r in rows if r["state"] != "completed" or fresh_start))
    try:
        report = service.reindex_events(event_types=list(event_types) or None,
                                        max_batches=max_batches,
                                        delete_old_indices=delete_old_indices,
                                        fresh_start=fresh_start, month_filter=months or None,
                                        progress=progress, batch_size=batch_size,
                                        max_memory_percent=max_memory_percent)
    finally:
        progress.close()
    if report.get("error"):
        raise click.ClickException(report["error"])
    echo_report(report)
    if report["total_errors"]:
        raise click.ClickException(f"{report['total_errors']} month(s) failed; their stock "
                                   "indices are untouched and they are retried on the next run")


class MonthProgress(Progress):
    """Adapts the services' ``(event_type, month, processed)`` callback to one bar.

    Months run concurrently, so each reports its own count and the bar shows
    their sum (thread-safe).
    """

    def __init__(self, label, total):
        """``total`` events expected over all months."""
        super().__init__(label)
        self.total, self.done = total, {}
        self._lock = threading.Lock()

    def __call__(self, event_type, month, processed):
        """Progress within a month; months add up."""
        with self._lock:
            self.done[(event_type, month)] = processed
            super().__call__(min(sum(self.done.values()), self.total), self.total)


def echo_report(report, verb="copied"):
    """Per month outcome lines and a summary (migration and re-enrichment)."""
    for event_type, type_report in report["event_types"].items():
        for month, r in sorted(type_report["months"].items()):
            state = ("✅ completed" if r["completed"] else
                     "⏸️ interrupted" if r["interrupted"] else "❌ failed")
            if r.get("skipped"):
                click.echo(f"{event_type} {month}: ✅ already done")
                continue
            counts = (r.get("validation") or {}).get("document_counts", {})
            click.echo(f"{event_type} {month}: {state}; {verb} {r['processed']} events in "
                       f"{r['batches']} batches ({r.get('total_time', 0):.1f} s)"
                       + (f"; source {counts['source']} = target {counts['target']}"
                          if counts and r["completed"] else ""))
            unknown = sorted(set(r.get("records_without_metadata") or []))
            if unknown:
                click.echo(f"    warning: {len(unknown)} record(s) not in the records index "
                           f"(no metadata on their events), e.g. {', '.join(unknown[:3])}")
            for error in r["errors"][:3]:
                click.echo(f"    error: {error}")
    for issue in report["health_issues"]:
        click.echo(f"Stopped: {issue} (resume with the same command)")
    click.echo(f"Events processed: {report['total_processed']}; "
               f"{'all selected months completed' if report['completed'] else 'incomplete: run again to resume'}")


@usage_events_cli.command("migrate-background")
@migrate_options
@click.option("--pid-dir", help="Folder for the job's PID, status and log files.")
@command_errors
def migrate_background_command(event_types, max_batches, batch_size, max_memory_percent,
                               delete_old_indices, fresh_start, months, pid_dir):
    """Run ``migrate`` as a detached background job."""
    require_enabled()
    validate_months(months)
    argv = invenio_argv("usage-events", "migrate", *forward_options({
        "--event-types": event_types, "--max-batches": max_batches, "--batch-size": batch_size,
        "--max-memory-percent": max_memory_percent, "--delete-old-indices": delete_old_indices,
        "--fresh-start": fresh_start, "--months": months,
    }))
    launch_background(PROCESS_NAME, argv, pid_dir)


@usage_events_cli.command("clear-bookmarks")
@click.option("--event-type", "--event-types", "-e", type=click.Choice(sorted(EVENT_TYPES)),
              help="Only this type (default both).")
@click.option("--month", "--months", "-m", help="Only this month (YYYY-MM).")
@click.option("--confirm", is_flag=True, help="Do not ask.")
@click.option("--fresh-start", is_flag=True, hidden=True,
              help="Accepted as upstream's guide writes it; clearing is a fresh start.")
@command_errors
def clear_bookmarks_command(event_type, month, confirm, fresh_start):
    """Forget migration positions so months start over on the next run.

    ``--event-types``/``--months``/``--fresh-start`` are accepted because
    upstream's setup guide uses them (upstream itself rejects them).
    """
    require_enabled()
    if month:
        validate_months([month])
    service = current_event_reindexing_service._get_current_object()
    bookmarks = service.reindexing_bookmark_api
    cleared = 0
    for row in service.count_total_events():
        if (event_type and row["event_type"] != event_type) or (month and row["month"] != month):
            continue
        task_id = f"{row['event_type']}-{row['month']}-reindexing"
        if bookmarks.get_bookmark(task_id) is None:
            continue
        if confirm or click.confirm(f"Clear bookmark {task_id}?"):
            bookmarks.delete_bookmark(task_id)
            click.echo(f"✅ {task_id}")
            cleared += 1
    click.echo(f"Cleared {cleared} bookmark(s)" if cleared else "No bookmarks were cleared")


@usage_events_cli.command("status")
@click.option("--show-bookmarks", is_flag=True, hidden=True)
@click.option("--show-indices", is_flag=True, hidden=True)
@click.option("--show-incomplete", is_flag=True, hidden=True)
@click.option("--show-completed", is_flag=True, hidden=True)
@click.option("--show-not-started", is_flag=True, hidden=True)
@command_errors
def status_command(**_upstream_flags):
    """Per type and month: source count, migrated count, remaining, state, bookmark.

    Upstream's ``--show-*`` flags are accepted; everything is always shown.
    """
    require_enabled()
    service = current_event_reindexing_service._get_current_object()
    rows = service.count_total_events()
    header = (f"{'type':<9}{'month':<9}{'source':>9}{'migrated':>10}{'remaining':>11}  "
              f"{'state':<12} bookmark")
    click.echo("Migration Status")
    click.echo(header)
    click.echo("-" * len(header))
    for r in rows:
        note = " (stock index write-blocked by an interrupted run)" if r["write_blocked"] else ""
        click.echo(f"{r['event_type']:<9}{r['month']:<9}{r['old_count']:>9}"
                   f"{r['migrated_count']:>10}{r['remaining_count']:>11}  {r['state']:<12} "
                   f"{r['bookmark'] or '-'}{note}")
    total = sum(r["old_count"] for r in rows)
    migrated = sum(r["migrated_count"] for r in rows)
    click.echo(f"Total: {total} events, {migrated} migrated, {total - migrated} remaining")
    echo_enrichment(service)


def echo_enrichment(service):
    """Which enriched months are out of date, and why (config or membership)."""
    digest = service.subcount_digest()
    months = [s for t in EVENT_TYPES for s in service.enriched_months(t)]
    stale_config, stale_members = [], []
    for state in months:
        name = f"{state.event_type} {state.month}"
        if service.enrichment_marks(state)[0] != digest:
            stale_config.append(name)
        else:
            changed = service.membership_changes(state)
            if changed:
                stale_members.append(f"{name} ({len(changed)} records)")
    click.echo(f"Enrichment: {len(months) - len(stale_config)} of {len(months)} enriched months "
               f"use the current subcount configuration ({digest})")
    for label, names in (("Out of date (configuration)", stale_config),
                         ("Membership changed since stamped", stale_members)):
        if names:
            click.echo(f"  {label}: " + ", ".join(names[:6])
                       + (f" and {len(names) - 6} more" if len(names) > 6 else ""))
    if stale_config or stale_members:
        click.echo("  Run: invenio community-stats usage-events re-enrich")
