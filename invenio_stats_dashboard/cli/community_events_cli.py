# Part of invenio-stats-dashboard (MIT License).
"""``invenio community-stats community-events generate | generate-background | status``."""

import time

import click

from ..services import community_events as ce
from ..services.backfill import scan
from ..services.events_log import GLOBAL
from .common import (
    Progress,
    command_errors,
    forward_options,
    invenio_argv,
    launch_background,
    require_enabled,
)

PROCESS_NAME = "community-event-generation"


def scope_options(func):
    """The filters shared by the three commands."""
    for decorator in reversed([
        click.option("--community-id", "community_ids", multiple=True,
                     help="Community UUID or slug (repeat for several)."),
        click.option("--record-ids", "record_ids", multiple=True,
                     help="Record id (repeat for several)."),
        click.option("--start-date", help="First record creation day (YYYY-MM-DD)."),
        click.option("--end-date", help="Last record creation day (YYYY-MM-DD)."),
    ]):
        func = decorator(func)
    return func


@click.group(name="community-events")
def community_events_cli():
    """Community membership events (add/remove log)."""


def _echo_scope(scope, community_ids):
    click.echo("Communities: " + (", ".join(community_ids) if community_ids else "all (and global)"))
    click.echo("Records: " + (", ".join(scope.record_ids) if scope.record_ids else "all"))
    if scope.start_date or scope.end_date:
        click.echo(f"Created between: {scope.start_date or 'the first record'} and "
                   f"{scope.end_date or 'today'}")


@community_events_cli.command("generate")
@scope_options
@click.option("--show-progress/--no-show-progress", default=True,
              help="Show a progress bar.")
@command_errors
def generate_command(community_ids, record_ids, start_date, end_date, show_progress):
    """Write the membership history the log misses (backfill, then repair)."""
    require_enabled()
    scope = ce.build_scope(record_ids, community_ids, start_date, end_date)
    _echo_scope(scope, community_ids)
    click.echo("Analyzing records to determine scope...")
    counting = Progress("Counting records", enabled=show_progress)
    before = scan(scope, write=False, progress=counting)
    counting.close()
    click.echo(f"Found {before.records_needing_events} records needing events")
    click.echo(f"Total events to create: {before.events_needed}")
    if before.approximated_pairs:
        click.echo(f"Pairs with estimated dates: {before.approximated_pairs} "
                   "(see docs/community-events.md)")
    if before.events_needed == 0:
        click.echo("All records already have the required community events!")
        return
    progress = Progress("Generating community events", enabled=show_progress)
    started = time.monotonic()
    records, created, existing = ce.generate(scope, progress=progress)
    elapsed = time.monotonic() - started
    progress.close()
    click.echo(f"Records processed:      {records}")
    click.echo(f"New events created:     {created}")
    click.echo(f"Existing events found:  {existing}")
    click.echo(f"Elapsed:                {elapsed:.1f} s "
               f"({created / elapsed if elapsed else 0:.0f} events/s)")
    click.echo("Next steps: invenio community-stats community-events status; "
               "invenio community-stats usage-events migrate")


@community_events_cli.command("generate-background")
@scope_options
@click.option("--pid-dir", help="Folder for the job's PID, status and log files.")
@command_errors
def generate_background_command(community_ids, record_ids, start_date, end_date, pid_dir):
    """Run ``generate`` as a detached background job."""
    require_enabled()
    ce.build_scope(record_ids, community_ids, start_date, end_date)  # validate first
    argv = invenio_argv("community-events", "generate", "--no-show-progress", *forward_options({
        "--community-id": community_ids, "--record-ids": record_ids,
        "--start-date": start_date, "--end-date": end_date,
    }))
    launch_background(PROCESS_NAME, argv, pid_dir)


@community_events_cli.command("status")
@scope_options
@click.option("--community-details", is_flag=True, help="Also list events needed per community.")
@command_errors
def status_command(community_ids, record_ids, start_date, end_date, community_details):
    """Per community: records, events, pairs to repair, estimated pairs, completeness."""
    require_enabled()
    scope = ce.build_scope(record_ids, community_ids, start_date, end_date)
    click.echo("Community addition/removal event indexing status")
    _echo_scope(scope, community_ids)
    report, rows = ce.CommunityRecordEventsService().status(scope)
    names = _community_names([c for c in rows if c != GLOBAL])
    click.echo(f"Total records found:     {report.total_records}")
    click.echo(f"Records missing events:  {report.records_needing_events}")
    click.echo(f"Total events missing:    {report.events_needed}")
    click.echo(f"Approximated pairs:      {report.approximated_pairs}")
    click.echo("")
    header = (f"{'community':<32} {'records':>8} {'events':>8} {'missing':>8} {'approx.':>8}"
              "  completeness")
    click.echo(header)
    click.echo("-" * len(header))
    order = sorted(rows, key=lambda c: (c != GLOBAL, names.get(c, c)))
    for community in order:
        row = rows[community]
        bar = "█" * round(20 * row["completeness"]) + "░" * (20 - round(20 * row["completeness"]))
        click.echo(f"{names.get(community, community)[:32]:<32} {row['records']:>8} "
                   f"{row['events']:>8} {row['records_missing_events']:>8} "
                   f"{row['approximated']:>8}  "
                   f"[{bar}] {100 * row['completeness']:.1f}%")
        if community_details and row["events_needed"]:
            click.echo(f"    events needed: {row['events_needed']}")
    if report.approximated_pairs:
        click.echo("\napprox.: (record, community) pairs whose history rests on an estimated "
                   "date (changes the database does not date; see docs/community-events.md).")
    if report.events_needed:
        cmd = ["invenio community-stats community-events generate"]
        cmd += [f"--community-id {c}" for c in community_ids]
        cmd += [f"--record-ids {r}" for r in record_ids]
        cmd += [f"--start-date {start_date}"] if start_date else []
        cmd += [f"--end-date {end_date}"] if end_date else []
        click.echo("\nTo create the missing events: " + " ".join(cmd))


def _community_names(ids):
    from invenio_communities.proxies import current_communities

    names = {}
    for community_id in ids:
        try:
            record = current_communities.service.record_cls.get_record(community_id)
            names[community_id] = record.slug
        except Exception:
            names[community_id] = community_id
    return names
