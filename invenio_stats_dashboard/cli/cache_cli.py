# Part of invenio-stats-dashboard (MIT License).
"""``invenio community-stats cache …``: generate, list, inspect and clear cached responses.

Differences from upstream (cli.md §3), on purpose: listing and clearing read
the cache's readable index (community, slug, year, category, basis) instead
of ``KEYS`` over opaque hashes, so ``clear-pattern 2023`` or a slug works;
``clear-item`` takes ``COMMUNITY YEAR [CATEGORY]``; every failure is one
``Error:`` line with a non-zero exit and writes nothing.
"""

import fnmatch
import json
import time
from datetime import datetime, timezone

import click
from flask import current_app

from .common import Progress, command_errors, forward_options, invenio_argv, launch_background

PROCESS_NAME = "cache-generation"


def _guard(force):
    if not force and not current_app.config.get("COMMUNITY_STATS_SCHEDULED_CACHE_TASKS_ENABLED"):
        raise click.ClickException(
            "Scheduled cache tasks are disabled (COMMUNITY_STATS_SCHEDULED_CACHE_TASKS_ENABLED "
            "= False); use --force to generate anyway.")


def _targets(community_ids, community_slugs):
    """Explicit ids and slugs (validated now: nothing runs on a typo), else ``all``."""
    from ..services.community_events import resolve_community_ids

    given = list(community_ids) + list(community_slugs)
    return resolve_community_ids(given) if given else "all"


def _labels():
    """``{community id: slug}`` (``global`` as is)."""
    from invenio_communities.communities.records.models import CommunityMetadata

    labels = {"global": "global"}
    for row in CommunityMetadata.query.all():
        labels[str(row.id)] = row.slug or str(row.id)
    return labels


def generation_options(func):
    """Options shared by ``generate`` and ``generate-background``."""
    for decorator in reversed([
        click.option("--community-id", "community_ids", multiple=True,
                     help="Community UUID, or global (repeatable)."),
        click.option("--community-slug", "community_slugs", multiple=True,
                     help="Community slug (repeatable)."),
        click.option("--year", "years", multiple=True,
                     help="Year or range, e.g. 2023 or 2020-2023 (repeatable; default: the "
                          "community's whole history)."),
        click.option("--overwrite", is_flag=True, help="Regenerate existing entries."),
        click.option("--force", is_flag=True,
                     help="Run although COMMUNITY_STATS_SCHEDULED_CACHE_TASKS_ENABLED is false."),
    ]):
        func = decorator(func)
    return func


@click.group("cache")
def cache_cli():
    """Pre-generated dashboard responses (Redis)."""


@cache_cli.command("generate")
@generation_options
@click.option("--async", "run_async", is_flag=True, help="Queue the Celery task and stop.")
@click.option("--dry-run", is_flag=True, help="Only say what would be generated.")
@click.option("--show-progress/--no-show-progress", default=True, help="Progress bar.")
@command_errors
def generate_command(community_ids, community_slugs, years, overwrite, force, run_async,
                     dry_run, show_progress):
    """Generate cached responses (current year and updated years always regenerated)."""
    from ..services.cache_generation import date_bases, parse_years, plan
    from ..services.response_cache import ResponseCache, category_names

    _guard(force)
    parse_years(years)  # malformed years fail before anything else
    targets = _targets(community_ids, community_slugs)
    years = list(years) or None
    if dry_run:
        cache = ResponseCache()
        labels, categories, bases = _labels(), category_names(), date_bases()
        click.echo("Would generate cache for:")
        click.echo(f"  Categories: {', '.join(categories)}; date bases: {', '.join(bases)}")
        total = existing = 0
        for community_id, span in plan(targets, years):
            name = labels.get(community_id, community_id)
            if not span:
                click.echo(f"  {name}: nothing (no history in the requested years)")
                continue
            n = len(span) * len(categories) * len(bases)
            have = sum(cache.exists_complete(cache.key(community_id, y, q, b))
                       for y in span for q in categories for b in bases)
            total, existing = total + n, existing + have
            click.echo(f"  {name}: {span[0]}-{span[-1]}, {n} entries ({have} exist)")
        click.echo(f"Total: {total} entries, {existing} exist, {total - existing} new"
                   + ("" if overwrite else " (existing past years are kept; --overwrite "
                                           "regenerates them)"))
        return
    if run_async:
        from ..tasks.cache_tasks import generate_cached_responses_task

        click.echo("Starting async cache generation...")
        task = generate_cached_responses_task.delay(targets, years, overwrite, False, None)
        click.echo(f"Task started with ID: {task.id}")
        return
    from ..tasks.cache_tasks import run_generation

    bar = Progress("Generating cache", enabled=show_progress)
    try:
        result = run_generation(targets, years, overwrite,
                                progress=lambda done, total, label: bar(done, total))
    finally:
        bar.close()
    if result.get("skipped"):
        raise click.ClickException(f"Cache generation skipped: {result['reason']}")
    if "error" in result:
        raise click.ClickException(f"Cache generation failed: {result['error']}")
    click.echo("Cache generation completed")
    click.echo(f"Success: {result['success']}, Failed: {result['failed']}, "
               f"Skipped (already exist): {result['skipped_existing']}, "
               f"Skipped (aggregation incomplete): {result['skipped_incomplete']}, "
               f"Removed (cleanup): {result['cleaned']}")
    if result["failed"]:
        for error in result["errors"][:20]:
            click.echo(f"  {error['community_id']}/{error['year']}/{error['category']}: "
                       f"{error['error']}", err=True)
        raise click.ClickException(f"{result['failed']} cache entries failed")


@cache_cli.command("generate-background")
@generation_options
@click.option("--pid-dir", help="Folder for the job's PID, status and log files.")
@command_errors
def generate_background_command(community_ids, community_slugs, years, overwrite, force,
                                pid_dir):
    """Run ``cache generate`` as a background job (process name 'cache-generation')."""
    from ..services.cache_generation import parse_years

    _guard(force)
    parse_years(years)
    targets = _targets(community_ids, community_slugs)
    argv = invenio_argv("cache", "generate", "--no-show-progress", *forward_options({
        "--community-id": [] if targets == "all" else targets, "--year": years,
        "--overwrite": overwrite, "--force": force}))
    launch_background(PROCESS_NAME, argv, pid_dir)


def _human_size(size):
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024


def _human_age(seconds):
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def _select(community_id=None):
    from ..services.community_events import resolve_community_ids
    from ..services.response_cache import ResponseCache

    cache = ResponseCache()
    cid = resolve_community_ids([community_id])[0] if community_id else None
    return cache, cache.entries(cid)


@cache_cli.command("list")
@click.option("--community-id", help="Only this community (UUID, slug or global).")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Rows to show (0: all).")
@click.option("--keys", "show_keys", is_flag=True, help="Show the Redis keys too.")
@command_errors
def list_command(community_id, limit, show_keys):
    """List entries: community, year, category, date basis, size, age."""
    cache, entries = _select(community_id)
    if not entries:
        click.echo("No cache entries found")
        return
    labels = _labels()
    shown = entries[:limit] if limit else entries
    click.echo(f"Cache entries (showing {len(shown)} of {len(entries)}):")
    click.echo(f"{'#':>4}  {'Community':<30} {'Year':<5} {'Category':<26} {'Basis':<10} "
               f"{'Size':>9} {'Age':>7}  State")
    for n, e in enumerate(shown, 1):
        state = ("current" if e["version"] == cache.version else "old version") + (
            "" if e.get("complete") else ", incomplete")
        click.echo(f"{n:>4}  {labels.get(e['community_id'], e['community_id'])[:30]:<30} "
                   f"{e['year']:<5} {e['category']:<26} {e['date_basis']:<10} "
                   f"{_human_size(e['size']):>9} {_human_age(e['age']):>7}  {state}"
                   + (f"  {e['key']}" if show_keys else ""))
    if len(shown) < len(entries):
        click.echo(f"... and {len(entries) - len(shown)} more entries (use --limit 0)")


@cache_cli.command("info")
@click.option("--detailed", is_flag=True, help="Redis server figures too.")
@command_errors
def info_command(detailed):
    """Summary: entries per community and year, sizes, hit counters."""
    from ..services.response_cache import ResponseCache

    cache = ResponseCache()
    entries, labels = cache.entries(), _labels()
    click.echo("Cache Summary")
    click.echo(f"  Prefix: {cache.prefix}   config version: {cache.version}")
    click.echo(f"  Entries: {len(entries)}   stored: "
               f"{_human_size(sum(e['size'] for e in entries))} (uncompressed "
               f"{_human_size(sum(e.get('raw_size', 0) for e in entries))})")
    counters = cache.counters()
    click.echo("  Requests: " + ", ".join(f"{k} {v}" for k, v in counters.items()))
    groups = {}
    for e in entries:
        groups.setdefault((e["community_id"], e["year"]), []).append(e)
    for (community_id, year), group in groups.items():
        oldest = max(e["age"] for e in group)
        bases = sorted({e["date_basis"] for e in group})
        click.echo(f"  {labels.get(community_id, community_id)} {year}: {len(group)} entries "
                   f"({', '.join(sorted({e['category'] for e in group}))}; "
                   f"basis {', '.join(bases)}), {_human_size(sum(e['size'] for e in group))},"
                   f" oldest {_human_age(oldest)}")
    if detailed:
        info = cache.client.info()
        click.echo(json.dumps({
            "redis_version": info.get("redis_version"),
            "used_memory_human": info.get("used_memory_human"),
            "connected_clients": info.get("connected_clients"),
            "timestamp": datetime.now(timezone.utc).isoformat()}, indent=2))


@cache_cli.command("clear-all")
@click.option("--yes-i-know", is_flag=True, help="Do not ask.")
@click.option("--force", is_flag=True, help="Do not ask (same as --yes-i-know).")
@command_errors
def clear_all_command(yes_i_know, force):
    """Delete every cached response of this instance's prefix."""
    from ..services.response_cache import ResponseCache

    cache = ResponseCache()
    if not (yes_i_know or force):
        click.confirm(f"Delete every '{cache.prefix}:*' entry?", abort=True)
    deleted = cache.clear_all()
    click.echo(f"Cleared {deleted} keys" if deleted else "No cache entries found")


def _confirm_and_delete(cache, doomed, force, dry_run):
    labels = _labels()
    for e in doomed[:10]:
        click.echo(f"  {labels.get(e['community_id'], e['community_id'])} {e['year']} "
                   f"{e['category']} {e['date_basis']}")
    if len(doomed) > 10:
        click.echo(f"  ... and {len(doomed) - 10} more")
    if dry_run:
        click.echo(f"Would clear {len(doomed)} cache entries")
        return
    if not force and not click.confirm(f"Clear {len(doomed)} entries?"):
        click.echo("Cache clearing cancelled")
        return
    click.echo(f"Successfully cleared {cache.delete(doomed)} cache entries")


@cache_cli.command("clear-pattern")
@click.argument("pattern")
@click.option("--force", is_flag=True, help="Do not ask.")
@click.option("--dry-run", is_flag=True, help="Only list what would be cleared.")
@command_errors
def clear_pattern_command(pattern, force, dry_run):
    """Clear entries whose community id, slug, year, category or basis matches PATTERN.

    Shell-style patterns: ``2023``, ``my-slug``, ``record-*``, ``*delta*``.
    """
    cache, entries = _select()
    labels = _labels()
    doomed = [e for e in entries if any(
        fnmatch.fnmatchcase(str(value), pattern) for value in (
            e["community_id"], labels.get(e["community_id"], ""), e["year"], e["category"],
            e["date_basis"]))]
    if not doomed:
        click.echo(f"No cache entries match '{pattern}'")
        return
    click.echo(f"{len(doomed)} cache entries match '{pattern}':")
    _confirm_and_delete(cache, doomed, force, dry_run)


@cache_cli.command("clear-item")
@click.argument("community")
@click.argument("year", type=int)
@click.argument("category", required=False)
@click.option("--date-basis", type=click.Choice(["added", "created", "published"]),
              help="Only this basis (default: all).")
@command_errors
def clear_item_command(community, year, category, date_basis):
    """Clear the entries of COMMUNITY (id, slug or global) for YEAR [and CATEGORY]."""
    from ..services.response_cache import category_names

    if category and category not in category_names() and not category.startswith(
            ("usage-", "record-", "community-")):
        raise click.ClickException(f"Unknown category '{category}'.")
    cache, entries = _select(community)
    doomed = [e for e in entries if e["year"] == year
              and (category is None or e["category"] == category)
              and (date_basis is None or e["date_basis"] == date_basis)]
    click.echo(f"Cleared {cache.delete(doomed)} cache entries for {community} {year}"
               + (f" {category}" if category else ""))


@cache_cli.command("test")
@command_errors
def test_command():
    """Write, read back, compare and delete a test entry (checks Redis and the codec)."""
    from ..services.response_cache import ResponseCache

    cache = ResponseCache(config={**current_app.config, "STATS_CACHE_PREFIX": "stats_test"})
    sample = {"global": {"records": [{"id": "global", "data": [["01-01", 1]]}]},
              "written": time.time()}
    if not cache.store("global", 1970, "test-category", "added", sample, complete=True):
        raise click.ClickException("could not write the test entry")
    click.echo("✅ write")
    back = cache.read(cache.key("global", 1970, "test-category", "added"))
    if back is None or json.loads(back) != sample:
        cache.clear_all()
        raise click.ClickException("the test entry read back differs from what was written")
    click.echo("✅ read back, equal")
    cache.clear_all()
    if cache.entries():
        raise click.ClickException("the test entry could not be deleted")
    click.echo("✅ delete")
    click.echo("Cache test passed")
