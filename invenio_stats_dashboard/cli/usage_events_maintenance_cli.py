# Part of invenio-stats-dashboard (MIT License).
"""``usage-events re-enrich | cleanup-old-indices | remove-backup-aliases``."""

import click

from ..proxies import current_event_reindexing_service
from ..services.usage_reindexing.months import EVENT_TYPES
from .common import command_errors, require_enabled
from .usage_events_cli import MonthProgress, echo_report, usage_events_cli, validate_months


@usage_events_cli.command("re-enrich")
@click.option("--event-types", "-e", multiple=True, type=click.Choice(sorted(EVENT_TYPES)),
              help="view and/or download.")
@click.option("--months", "-m", multiple=True, help="YYYY-MM or YYYY-MM:YYYY-MM.")
@click.option("--max-batches", "-b", type=click.IntRange(min=1),
              help="Record groups per month per run.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), help="Events per record group.")
@click.option("--fresh-start", is_flag=True,
              help="Redo months even if enriched under the current configuration.")
@click.option("--dry-run", is_flag=True, help="Only list which months are out of date.")
@command_errors
def reenrich_command(event_types, months, max_batches, batch_size, fresh_start, dry_run):
    """Re-derive the subcount fields of migrated events after a config change.

    Deploy the new COMMUNITY_STATS_SUBCOUNTS first (restart web and workers),
    so events recorded during the run are enriched the new way too.
    """
    require_enabled()
    months = validate_months(months)
    service = current_event_reindexing_service._get_current_object()
    types = list(event_types) or list(EVENT_TYPES)
    months_found = [s for t in types for s in service.enriched_months(t, months or None)]
    if not months_found:
        raise click.ClickException("No enriched event indices match; run "
                                   "'usage-events migrate' first.")
    digest = service.subcount_digest()
    if dry_run:
        click.echo(f"DRY RUN - subcount configuration {digest}")
        for state in months_found:
            count = service.client.count(index=state.enriched_index)["count"]
            if service.enrichment_marks(state)[0] != digest:
                why = "out of date (configuration)"
            else:
                changed = service.membership_changes(state)
                why = (f"membership changed for {len(changed)} records" if changed
                       else "current")
            click.echo(f"  {state.enriched_index}: {count} events, {why}")
        return
    total = sum(service.client.count(index=s.enriched_index)["count"] for s in months_found)
    progress = MonthProgress("Re-enriching events", total)
    try:
        report = service.reenrich_events(event_types=types, month_filter=months or None,
                                         max_batches=max_batches, fresh_start=fresh_start,
                                         progress=progress, batch_size=batch_size)
    finally:
        progress.close()
    echo_report(report, verb="re-enriched")
    if report["total_errors"]:
        raise click.ClickException(f"{report['total_errors']} month(s) failed; run again "
                                   "to resume them")


@usage_events_cli.command("cleanup-old-indices")
@click.option("--event-types", "-e", multiple=True, type=click.Choice(sorted(EVENT_TYPES)),
              help="view and/or download.")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@command_errors
def cleanup_old_indices_command(event_types, dry_run):
    """Delete stock monthly indices whose migration is completed and verified."""
    require_enabled()
    report = current_event_reindexing_service.cleanup_old_indices(
        event_types=list(event_types) or None, dry_run=dry_run)
    for event_type, rows in report["event_types"].items():
        click.echo(f"{event_type}:")
        for row in rows:
            click.echo(f"  {row['index']} → {row['target']}")
            ratio = row["migrated"] / row["old"] * 100 if row["old"] else 100.0
            if row["action"] == "would delete":
                click.echo(f"    [OK] Would delete ({row['old']} events, all migrated)")
            elif row["action"] == "deleted":
                click.echo(f"    [OK] Deleted successfully ({row['old']} events, all migrated)")
            else:
                click.echo(f"    [WARNING] Kept: {row['reason']} (old {row['old']}, migrated "
                           f"{row['migrated']}, {ratio:.1f}%)")
    verb = "would be deleted" if dry_run else "deleted"
    click.echo(f"[SUMMARY] {report['deleted']}/{report['candidates']} indices {verb}")


@usage_events_cli.command("remove-backup-aliases")
@click.option("--dry-run", is_flag=True, help="Only list the aliases.")
@command_errors
def remove_backup_aliases_command(dry_run):
    """Strip aliases from legacy '-backup' event indices left by upstream migrations."""
    require_enabled()
    removed = current_event_reindexing_service.remove_backup_index_aliases(dry_run=dry_run)
    for index, aliases in removed.items():
        prefix = "Would remove" if dry_run else "[OK] Removed"
        click.echo(f"{prefix} {', '.join(aliases)} from {index}")
    click.echo(f"[SUMMARY] {len(removed)} backup index(es) "
               f"{'with aliases' if dry_run else 'cleaned'}" if removed
               else "[SUMMARY] No backup index has aliases")
