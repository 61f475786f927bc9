# Part of invenio-stats-dashboard (MIT License).
"""``usage-events generate | generate-background``: synthetic events for tests and demos."""

import click
from flask import current_app

from ..services.community_events import parse_date
from ..utils.usage_events import UsageEventFactory
from .common import command_errors, forward_options, invenio_argv, launch_background, require_enabled
from .usage_events_cli import usage_events_cli

PROCESS_NAME = "usage-event-generation"
WARNING = ("Synthetic events are indistinguishable from real ones in the statistics and "
           "cannot be removed without deleting the event indices. Never do this on a "
           "production instance. Continue?")


def generate_options(func):
    """Options shared by ``generate`` and ``generate-background``."""
    for decorator in reversed([
        click.option("--start-date", help="Only records created on or after (YYYY-MM-DD)."),
        click.option("--end-date", help="Only records created on or before (YYYY-MM-DD)."),
        click.option("--event-start-date", help="Earliest event time (default: record creation)."),
        click.option("--event-end-date", help="Latest event day (default: now)."),
        click.option("--events-per-record", type=click.IntRange(min=1), default=5,
                     show_default=True, help="Views per record (plus one download per view "
                                             "of a record with files)."),
        click.option("--max-records", type=click.IntRange(min=0), default=0,
                     help="Cap on records (0 = all)."),
        click.option("--enrich-events", is_flag=True,
                     help="Add community ids and subcount fields before indexing."),
        click.option("--yes-i-know", is_flag=True, help="Skip the confirmation prompt."),
    ]):
        func = decorator(func)
    return func


def _check_dates(options):
    dates = {name: parse_date(options[name], f"--{name.replace('_', '-')}")
             for name in ("start_date", "end_date", "event_start_date", "event_end_date")}
    for lo, hi in (("start_date", "end_date"), ("event_start_date", "event_end_date")):
        if dates[lo] and dates[hi] and dates[lo] > dates[hi]:
            raise click.ClickException(f"--{lo.replace('_', '-')} is after "
                                       f"--{hi.replace('_', '-')}.")


@usage_events_cli.command("generate")
@generate_options
@click.option("--dry-run", is_flag=True, help="Build the events but do not index them.")
@click.option("--use-migrated-indices", is_flag=True,
              help="Accepted for upstream compatibility: months with a -v2.0.0 index are "
                   "always written there.")
@command_errors
def generate_command(dry_run, use_migrated_indices, yes_i_know, **options):
    """Generate synthetic view and download events for the instance's records."""
    require_enabled()
    _check_dates(options)
    click.echo("Synthetic usage events:")
    for name, value in options.items():
        shown = ("yes" if value else "no") if isinstance(value, bool) else value or "all"
        click.echo(f"  • {name.replace('_', ' ')}: {shown}")
    if not (dry_run or yes_i_know or click.confirm(WARNING, default=False)):
        click.echo("Operation cancelled by user.")
        return
    factory = UsageEventFactory(subcount_configs=current_app.config["COMMUNITY_STATS_SUBCOUNTS"])
    result = factory.generate_and_index_repository_events(dry_run=dry_run, **options)
    generated = result["generated"]
    click.echo(f"Generated: {generated.get('record-view', 0)} views, "
               f"{generated.get('file-download', 0)} downloads")
    if dry_run:
        click.echo("Dry run: nothing was indexed.")
        return
    click.echo(f"Indexed: {result['indexed']} events")
    if result["errors"]:
        raise click.ClickException(f"Errors: {result['errors']} events were not indexed")


@usage_events_cli.command("generate-background")
@generate_options
@click.option("--pid-dir", help="Folder for the job's PID, status and log files.")
@command_errors
def generate_background_command(yes_i_know, pid_dir, **options):
    """Run ``generate`` as a detached background job."""
    require_enabled()
    _check_dates(options)
    if not (yes_i_know or click.confirm(WARNING, default=False)):
        click.echo("Operation cancelled by user.")
        return
    argv = invenio_argv("usage-events", "generate", "--yes-i-know", *forward_options(
        {f"--{k.replace('_', '-')}": v for k, v in options.items()}))
    launch_background(PROCESS_NAME, argv, pid_dir)
