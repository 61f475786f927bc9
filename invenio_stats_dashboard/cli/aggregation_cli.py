# Part of invenio-stats-dashboard (MIT License).
"""``invenio community-stats aggregate | aggregate-background | status | read |
clear-bookmarks | clear-lock | enable-dashboards | destroy-indices`` (cli.md §2).

Every input (series names, dates, communities) is checked before anything is
written; every failure — a failed or stopped run, a skipped one (lock held)
included — ends with one ``Error: …`` line and exit 1.
"""

import json
import sys

import click
from flask import current_app

from ..aggregations import status as st
from ..aggregations.runner import communities_to_aggregate, resolve_dates, resolve_series
from ..aggregations.series import BY_NAME, in_order
from ..exceptions import InvalidInputError
from ..proxies import current_community_stats_service
from ..utils.process_manager import JobReporter
from .common import command_errors, forward_options, invenio_argv, launch_background, \
    require_enabled

PROCESS_NAME = "aggregation"


def _service():
    return current_community_stats_service._get_current_object()


def community_labels():
    """``{id: slug}`` of every community (and ``global``), for readable output."""
    from invenio_communities.communities.records.models import CommunityMetadata

    labels = {str(r.id): r.slug for r in CommunityMetadata.query.all()}
    labels["global"] = "global"
    return labels


def run_options(func):
    """Options shared by ``aggregate`` and ``aggregate-background``."""
    for decorator in reversed([
        click.option("--community-id", "community_ids", multiple=True,
                     help="Community UUID or slug, or 'global' (repeat; default: every "
                          "enabled community and global)."),
        click.option("--aggregation-type", "aggregation_types", multiple=True,
                     help="Aggregator name, e.g. community-usage-delta-agg (repeat; "
                          "default all, in the scheduled order)."),
        click.option("--start-date", help="First day (YYYY-MM-DD; default: bookmark or "
                                          "where the series begins)."),
        click.option("--end-date", help="Last day (YYYY-MM-DD; default today)."),
        click.option("--update-bookmark/--no-update-bookmark", default=True,
                     help="Move the bookmarks (default) or leave them."),
        click.option("--ignore-bookmark", is_flag=True,
                     help="Recompute from --start-date (or the first day), whatever the "
                          "bookmark; snapshots are re-derived from there on."),
        click.option("--until-caught-up", is_flag=True,
                     help="Go on to today (not one COMMUNITY_STATS_CATCHUP_INTERVAL step)."),
        click.option("--workers", type=click.IntRange(1, 64),
                     help="Workers on the run: this process plus Celery workers "
                          "(default COMMUNITY_STATS_AGGREGATION_WORKERS)."),
        click.option("--verbose", is_flag=True, help="Per-community details."),
        click.option("--force", is_flag=True, help="Run although "
                     "COMMUNITY_STATS_SCHEDULED_AGG_TASKS_ENABLED is false."),
    ]):
        func = decorator(func)
    return func


def _check_run(community_ids, aggregation_types, start_date, end_date, force):
    """Guards and input, before anything is written."""
    require_enabled()
    if not current_app.config.get("COMMUNITY_STATS_SCHEDULED_AGG_TASKS_ENABLED"):
        if not force:
            raise click.ClickException(
                "Scheduled aggregation is disabled (COMMUNITY_STATS_SCHEDULED_AGG_TASKS_"
                "ENABLED = False): pass --force to aggregate anyway.")
        current_app.logger.warning("aggregate --force: scheduled aggregation is disabled")
    resolve_series(aggregation_types)
    resolve_dates(start_date, end_date)
    if community_ids:
        communities_to_aggregate(community_ids)


class UnitProgress:
    """One progress bar per (series, community) unit; a background job's status file."""

    def __init__(self, labels, enabled=True):
        """``labels``: community id → slug."""
        self.labels, self.enabled = labels, enabled
        self.reporter = JobReporter()
        self.bar, self.unit, self.done = None, None, 0

    def __call__(self, unit, done, total):
        """Days ``done`` of ``total`` of ``unit``."""
        label = (f"{st.short_name(unit.series)} "
                 f"{self.labels.get(unit.community_id, unit.community_id)}")
        if self.reporter.active:
            self.reporter.update(done, total, f"{label} {unit.first}..{unit.last}")
            return
        if not self.enabled:
            return
        if unit is not self.unit:
            self.close()
            self.unit, self.done = unit, 0
            self.bar = click.progressbar(length=total, label=label[:40].ljust(40),
                                         show_pos=True, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self):
        """Finish the current bar."""
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@click.command("aggregate")
@run_options
@click.option("--eager/--no-eager", default=True,
              help="Run here (default) or queue the Celery task and wait for it.")
@click.option("--show-progress/--no-show-progress", default=True, help="Progress bars.")
@command_errors
def aggregate_command(community_ids, aggregation_types, start_date, end_date,
                      update_bookmark, ignore_bookmark, until_caught_up, workers, verbose,
                      force, eager, show_progress):
    """Aggregate statistics for communities and global (seed step 4)."""
    _check_run(community_ids, aggregation_types, start_date, end_date, force)
    labels = community_labels()
    names = [s.name for s in resolve_series(aggregation_types)]
    click.echo("=" * 60)
    click.echo("COMMUNITY STATS AGGREGATION")
    click.echo("=" * 60)
    click.echo(f"Start date: {start_date or 'bookmark or first day'}; "
               f"end date: {end_date or 'today'}")
    click.echo(f"Aggregation types: {', '.join(names)}")
    click.echo("Communities: " + (", ".join(community_ids) if community_ids
                                 else "every enabled community and global"))
    click.echo(f"Mode: {'in this process' if eager else 'Celery task (waiting for it)'}; "
               f"update bookmark: {update_bookmark}; ignore bookmark: {ignore_bookmark}; "
               f"until caught up: {until_caught_up}")
    interval = int(current_app.config.get("COMMUNITY_STATS_CATCHUP_INTERVAL", 365))
    if start_date and not (ignore_bookmark or until_caught_up):
        click.echo(f"Note: one run does at most {interval} days per series and community "
                   "(COMMUNITY_STATS_CATCHUP_INTERVAL); a bookmark, if any, wins over "
                   "--start-date.")
    progress = UnitProgress(labels, enabled=show_progress and eager)
    try:
        result = _service().aggregate_stats(
            community_ids=list(community_ids) or None,
            aggregation_types=list(aggregation_types) or None, start_date=start_date,
            end_date=end_date, eager=eager, update_bookmark=update_bookmark,
            ignore_bookmark=ignore_bookmark, verbose=verbose, progress=progress,
            workers=workers, until_caught_up=until_caught_up)
    finally:
        progress.close()
    if result.get("task_id"):
        click.echo(f"Celery task: {result['task_id']}")
    if result.get("skipped"):
        raise click.ClickException(
            f"Aggregation skipped - another instance running ({result['error']})")
    click.echo(result["formatted_report_verbose" if verbose else "formatted_report"])
    _exit_status(result)


def _exit_status(result):
    """One ``Error:`` line (exit 1) unless every series succeeded."""
    if result.get("stopped"):
        raise click.ClickException(
            f"aggregation stopped: {result['stopped']}; bookmarks are at the last complete "
            "day: run again to continue")
    failed = [r for r in result["results"] if r["status"] == "failed"]
    if failed:
        detail = (failed[0]["error_details"] or ["failed"])[0].splitlines()[0]
        raise click.ClickException(
            f"{len(failed)} of {len(result['results'])} aggregator(s) failed "
            f"({failed[0]['aggregator']}: {detail}); bookmarks are at the last complete "
            "day: run again once fixed")


@click.command("aggregate-background")
@run_options
@click.option("--pid-dir", help="Folder for the job's PID, status and log files.")
@command_errors
def aggregate_background_command(community_ids, aggregation_types, start_date, end_date,
                                 update_bookmark, ignore_bookmark, until_caught_up, workers,
                                 verbose, force, pid_dir):
    """Run ``aggregate`` as a detached background job (process name 'aggregation')."""
    _check_run(community_ids, aggregation_types, start_date, end_date, force)
    argv = invenio_argv("aggregate", "--eager", *forward_options({
        "--community-id": community_ids, "--aggregation-type": aggregation_types,
        "--start-date": start_date, "--end-date": end_date,
        "--no-update-bookmark": not update_bookmark, "--ignore-bookmark": ignore_bookmark,
        "--until-caught-up": until_caught_up, "--workers": workers, "--verbose": verbose,
        "--force": force}))
    launch_background(PROCESS_NAME, argv, pid_dir)


def _bar(fraction, width):
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled)


@click.command("status")
@click.option("--community-id", "-c", "community_ids", multiple=True,
              help="Community UUID or slug, or 'global' (default: all and global).")
@click.option("--verbose", "-v", is_flag=True, help="Several lines per aggregator.")
@command_errors
def status_command(community_ids, verbose):
    """Per community and aggregator: first day, bookmark, days behind, completeness."""
    require_enabled()
    rows = _service().get_aggregation_status(list(community_ids) or None)
    labels = community_labels()
    series = in_order()
    click.echo("=" * 80)
    click.echo("COMMUNITY AGGREGATION STATUS")
    click.echo("=" * 80)
    for community_id, per_series in rows.items():
        click.echo(f"Community: {labels.get(community_id, community_id)} ({community_id})")
        click.echo("-" * 60)
        for s in series:
            row = per_series[s.name]
            name = st.short_name(s).ljust(25)
            if not row["index_exists"]:
                click.echo(f"{name} [No index]")
                continue
            if not row["documents"]:
                click.echo(f"{name} [No data available] 0%")
                continue
            mark = row["bookmark"]
            behind = ("no bookmark" if mark is None else "up to date"
                      if row["days_behind"] == 0 else f"{row['days_behind']}d behind")
            if not verbose:
                click.echo(f"{name} [{_bar(row['completeness'], 30)}] "
                           f"{row['completeness'] * 100:3.0f}%  first {row['first_day']}, "
                           f"bookmark {mark or '-'} ({behind})")
                continue
            click.echo(f"{s.name}")
            click.echo(f"    documents: {row['documents']}; first {row['first_day']}, "
                       f"last {row['last_day']}")
            click.echo(f"    bookmark: {mark or '-'} ({behind})")
            click.echo(f"    [{_bar(row['completeness'], 50)}] "
                       f"{row['completeness'] * 100:.1f}%")
        click.echo("")
    click.echo("=" * 80)


@click.command("read")
@click.option("--community-id", default="global", help="Community UUID or slug, or global.")
@click.option("--start-date", help="First day (default yesterday).")
@click.option("--end-date", help="Last day (default today).")
@click.option("--query-type", type=click.Choice(sorted(st.QUERY_NAMES)),
              help="One series (default all).")
@command_errors
def read_command(community_id, start_date, end_date, query_type):
    """Print stored aggregation documents (JSON) for a community and a range of days."""
    from datetime import datetime, timedelta, timezone

    require_enabled()
    today = datetime.now(timezone.utc).date()
    start_date = start_date or (today - timedelta(days=1)).isoformat()
    end_date = end_date or today.isoformat()
    click.echo(f"Reading {f'[{query_type}] ' if query_type else ''}stats for community "
               f"{community_id} from {start_date} to {end_date}")
    found, data = _service().read_stats(community_id, start_date, end_date, query_type)
    if not found:
        click.echo("No data found for the specified date range.")
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@click.command("clear-bookmarks")
@click.option("--community-id", "community_ids", multiple=True,
              help="Community UUID or slug, or 'global'.")
@click.option("--aggregation-type", "aggregation_types", multiple=True,
              help="Aggregator name (the *-agg names).")
@click.option("--all-communities", is_flag=True, help="Every community and global.")
@click.option("--all-aggregation-types", is_flag=True, help="Every aggregator.")
@click.option("--confirm", is_flag=True, help="Do not ask.")
@command_errors
def clear_bookmarks_command(community_ids, aggregation_types, all_communities,
                            all_aggregation_types, confirm):
    """Forget aggregation bookmarks: the next run starts those series from their first day."""
    require_enabled()
    if not (community_ids or aggregation_types or all_communities or all_aggregation_types):
        raise InvalidInputError("Say what to clear: --community-id, --aggregation-type, "
                                "--all-communities and/or --all-aggregation-types.")
    names = [s.name for s in resolve_series(
        None if all_aggregation_types or not aggregation_types else aggregation_types)]
    ids = None if all_communities or not community_ids else \
        communities_to_aggregate(community_ids)
    labels = community_labels()
    click.echo("Clearing aggregation bookmarks...")
    click.echo("Communities: " + ("ALL" if ids is None else
                                  ", ".join(labels.get(c, c) for c in ids)))
    click.echo("Aggregation types: " + ("ALL" if len(names) == len(BY_NAME)
                                        else ", ".join(names)))
    if not confirm and not click.confirm("This will clear aggregation bookmarks. Continue?"):
        click.echo("Operation cancelled.")
        return
    result = _service().clear_aggregation_bookmarks(ids, names)
    if not result["total_cleared"]:
        click.echo("No bookmarks were found to clear")
        return
    click.echo(f"Successfully cleared {result['total_cleared']} bookmark(s)")
    for community_id, cleared in result["cleared"].items():
        click.echo(f"Community: {labels.get(community_id, community_id)} ({community_id})")
        for name in cleared:
            click.echo(f"    {st.short_name(BY_NAME[name])}")


@click.command("clear-lock")
@click.option("--lock-name", default="community_stats_aggregation",
              help="The lock (key lock:<name>); aggregation units are agg:<series>:<community>.")
@click.option("--list-locks", is_flag=True, help="List every lock and its holder.")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@command_errors
def clear_lock_command(lock_name, list_locks, dry_run):
    """Remove a lock left by a run (a killed holder's lock also expires by itself)."""
    require_enabled()
    service = _service()
    if list_locks:
        locks = service.list_aggregation_locks()["locks"]
        if not locks:
            click.echo("No locks are held")
        for name, info in sorted(locks.items()):
            click.echo(f"lock:{name}: {info.get('job', '?')} on {info.get('host', '?')} "
                       f"pid {info.get('pid', '?')}, expires in {info['ttl']:.0f} s unless "
                       "renewed")
        return
    result = service.clear_aggregation_lock(lock_name, dry_run)
    if not result["found"]:
        click.echo(f"Lock '{lock_name}' is not held (nothing to clear)")
        return
    info = result["holder"]
    holder = f"{info.get('job', '?')} on {info.get('host', '?')} pid {info.get('pid', '?')}"
    if dry_run:
        click.echo(f"Would clear lock '{lock_name}' held by {holder}")
        return
    click.echo(f"Cleared lock '{lock_name}' (held by {holder}); a live holder notices "
               "within its lease and stops. Aggregation can run again.")


@click.command("enable-dashboards")
@click.argument("community_ids", nargs=-1)
@click.option("--first-active", help="First community event on or before this date.")
@click.option("--active-since", help="Last community event on or after this date.")
@click.option("--record-threshold", type=click.IntRange(min=0), default=0,
              help="At least this many records ever added.")
@click.option("--disable", is_flag=True, help="Turn the dashboards off instead.")
@click.option("--verbose", "-v", is_flag=True, help="List the communities.")
@command_errors
def enable_dashboards_command(community_ids, first_active, active_since, record_threshold,
                              disable, verbose):
    """Turn community dashboards on (stats:dashboard_enabled), by id/slug or by activity."""
    from ..services.community_dashboards import CommunityDashboardsService

    if community_ids and (first_active or active_since or record_threshold):
        current_app.logger.warning("enable-dashboards: ids given, activity filters ignored")
    verb = "disable" if disable else "enable"
    click.echo("=" * 60)
    click.echo(f"{verb.capitalize()[:-1]}ing stats dashboards for selected communities")
    click.echo("=" * 60)
    if not (community_ids or first_active or active_since or record_threshold):
        click.echo("No communities given and no activity criteria: nothing was changed.")
        return
    result = CommunityDashboardsService().enable_community_dashboards(
        list(community_ids) or None, first_active, active_since, record_threshold,
        verbose=verbose, enabled=not disable)
    labels = community_labels()
    click.echo(f"{verb.capitalize()}d dashboards for {len(result['communities_updated'])}")
    if verbose:
        for community_id in result["communities_updated"]:
            click.echo(f"    {labels.get(community_id, community_id)} ({community_id})")
    failed = result["communities_failed"]
    click.echo(f"Failed to {verb} dashboards for {len(failed)}")
    if failed:
        raise click.ClickException(f"{failed[0]['id']}: {failed[0]['error_message']}"
                                   .splitlines()[0])


@click.command("destroy-indices")
@click.option("--yes-i-know", "--yes", "yes", is_flag=True, help="Do not ask.")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@command_errors
def destroy_indices_command(yes, dry_run):
    """Delete this instance's statistics indices (aggregations, log, bookmarks, events)."""
    require_enabled()
    from invenio_search.proxies import current_search_client

    click.secho("This permanently deletes invenio-stats-dashboard indices of this instance.",
                fg="red", bold=True, err=True)
    click.echo("Searching for matching indices...")
    targets, kept = st.destroy_targets()
    click.echo(f"Found {len(targets)} indices to delete:")
    for name in targets:
        click.echo(f"    {name}")
    for name, why in kept.items():
        click.echo(f"Kept {name}: {why}")
    if dry_run or not targets:
        return
    if not yes:
        click.confirm("Do you know that you are going to destroy all "
                      "invenio-stats-dashboard indices?", abort=True)
    failed = []
    with click.progressbar(targets, label="Deleting", show_percent=True, show_pos=True,
                           file=sys.stderr) as bar:
        for name in bar:
            try:
                current_search_client.indices.delete(index=name, ignore=[400, 404])
            except Exception as exc:  # noqa: BLE001 - listed below
                failed.append(f"{name} ({type(exc).__name__}: {exc})".splitlines()[0])
    click.echo(f"Deleted {len(targets) - len(failed)} indices. Re-run the setup steps "
               "(community-events generate, usage-events migrate, aggregate) to rebuild.")
    if failed:
        raise click.ClickException(f"{len(failed)} indices could not be deleted: "
                                   + ", ".join(failed[:3]))


COMMANDS = (aggregate_command, aggregate_background_command, status_command, read_command,
            clear_bookmarks_command, clear_lock_command, enable_dashboards_command,
            destroy_indices_command)
