# Part of invenio-stats-dashboard (MIT License).
"""Pre-generation of the response cache, registry flags and cleanup (§8.4, §8.6).

Why a module of its own: the request path (:mod:`.response_cache`) must not
depend on community listings and history spans, which only generation needs.

* :func:`create` generates (community, year, category, basis) entries with
  upstream's rules (regenerate the current year, flagged years and, with
  ``overwrite``, everything; skip existing complete entries) and returns the
  §8.4 summary with the two kinds of skip counted apart (gap 17).
* Flags (§8.6, gaps 18, 21): ``<id>_cache_<Y>`` while a (community, year) is
  generated, for ``global`` too; ``<id>_first_run`` becomes ``completed`` once
  every category of the current year was written complete.
  :func:`registry_status` is what a page reads — ``<id>_agg_running``, never
  a prefix that also matches ``agg_updated_<Y>``.
* Cleanup (gap 11): entries of communities that are gone or no longer enabled,
  of years outside a community's history, and of older config versions are
  deleted; so are the registry flags of deleted communities.
"""

from datetime import datetime, timezone

from flask import current_app

from ..exceptions import InvalidInputError
from . import events_log as log
from .response_cache import ResponseCache, category_names


def default_compute(query_name, community_id, year, date_basis, component_names=None):
    """The series set of one yearly entry, from the resources' query layer."""
    from ..resources.queries import compute_category

    return compute_category(query_name, community_id, f"{year}-01-01", f"{year}-12-31",
                            date_basis=date_basis, component_names=component_names)


def date_bases(config=None):
    """Bases generated per category (``STATS_CACHE_DATE_BASES``, default ``added``)."""
    return tuple((config or current_app.config).get("STATS_CACHE_DATE_BASES") or ("added",))


def registry_status(community_id, registry=None):
    """What a dashboard page shows: ``agg_in_progress``, ``caching_in_progress``,
    ``first_run_incomplete`` (§8.6 view semantics, gap 18 fixed)."""
    if registry is None:
        registry = ResponseCache().registry
    caching = any(registry.scan_iter(match=f"{community_id}_cache_*", count=100))
    first = registry.get(f"{community_id}_first_run")
    return {"agg_in_progress": bool(registry.exists(f"{community_id}_agg_running")),
            "caching_in_progress": caching,
            "first_run_incomplete": first != b"completed"}


def resolve_communities(community_ids):
    """``None`` → global; ``"all"`` → every enabled community and global; else ids/slugs."""
    from ..aggregations.runner import communities_to_aggregate

    if community_ids is None:
        return [log.GLOBAL]
    if community_ids == "all" or community_ids == ["all"]:
        return communities_to_aggregate()
    if isinstance(community_ids, str):
        community_ids = [community_ids]
    return communities_to_aggregate(list(community_ids))


def parse_years(values):
    """``["2023", "2020-2022"]`` → sorted years (``InvalidInputError`` when malformed)."""
    years = set()
    for value in values or ():
        text = str(value).strip()
        try:
            if "-" in text:
                first, last = (int(p) for p in text.split("-", 1))
            else:
                first = last = int(text)
        except ValueError:
            raise InvalidInputError(
                f"Malformed year '{value}' (expected 2023 or a range 2020-2023).")
        if first > last or first < 1900 or last > 9999:
            raise InvalidInputError(f"Bad year range '{value}'.")
        years.update(range(first, last + 1))
    return sorted(years)


def first_year(community_id, client=None):
    """Year the history of ``community_id`` starts (None: nothing known about it).

    min(earliest community event, community creation); for ``global`` the
    earliest global event and the earliest record ``created``.
    """
    from invenio_search.proxies import current_search_client
    from invenio_search.utils import prefix_index

    client = client or current_search_client
    years = []
    if client.indices.exists_alias(name=log.alias_name()):
        res = client.search(index=log.alias_name(), body={
            "size": 0, "query": {"term": {"community_id": community_id}},
            "aggs": {"first": {"min": {"field": "event_date"}}}})
        value = res["aggregations"]["first"].get("value_as_string")
        if value:
            years.append(int(value[:4]))
    if community_id == log.GLOBAL:
        index = prefix_index("rdmrecords-records")
        if client.indices.exists(index=index):
            res = client.search(index=index, body={
                "size": 0, "aggs": {"first": {"min": {"field": "created"}}}})
            value = res["aggregations"]["first"].get("value_as_string")
            if value:
                years.append(int(value[:4]))
    else:
        from invenio_communities.communities.records.models import CommunityMetadata

        row = CommunityMetadata.query.filter_by(id=community_id).one_or_none()
        if row is not None and row.created is not None:
            years.append(row.created.year)
    return min(years) if years else None


def plan(community_ids=None, years=None, current_year_only=False):
    """``[(community, [years])]`` with every community's years clipped to its history."""
    this_year = datetime.now(timezone.utc).year
    wanted = parse_years(years) if years not in (None, "auto") else None
    out = []
    for community_id in resolve_communities(community_ids):
        start = first_year(community_id)
        span = list(range(start, this_year + 1)) if start else []
        if current_year_only:
            span = [y for y in span if y == this_year]
        if wanted is not None:
            span = [y for y in span if y in wanted]
        out.append((community_id, span))
    return out


def key_components(community_id, optimize, custom_fields=None):
    """What of the community's layout goes into its cache keys (None: nothing) —
    also the component names to prune by (None: nothing is pruned).

    Only when ``optimize`` prunes anything (a non-empty
    ``STATS_DASHBOARD_COMPONENT_METRICS_REGISTRY``): then an entry depends on
    the components of the layout it was pruned for, and a community's own
    layout is not in the configuration version — so a changed layout gets
    new keys instead of the old layout's shapes. ``custom_fields``: the
    community's, when the caller has read it already (saves a query).
    """
    if not optimize or not current_app.config.get("STATS_DASHBOARD_COMPONENT_METRICS_REGISTRY"):
        return None
    return layout_components(community_id, custom_fields)


def layout_components(community_id, custom_fields=None):
    """Component names of the community's layout (its ``stats:dashboard_layout``
    custom field), else of ``STATS_DASHBOARD_LAYOUT["global_layout"]`` (config.md §5.4)."""
    layout = None
    if community_id != log.GLOBAL:
        if custom_fields is None:
            from invenio_communities.communities.records.models import CommunityMetadata

            row = CommunityMetadata.query.filter_by(id=community_id).one_or_none()
            custom_fields = ((row.json or {}).get("custom_fields") or {}) if row is not None \
                else {}
        layout = (custom_fields or {}).get("stats:dashboard_layout") or None
    if not isinstance(layout, dict):
        layout = (current_app.config.get("STATS_DASHBOARD_LAYOUT") or {}).get("global_layout")
    names = set()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("component"), str):
                names.add(node["component"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(layout or {})
    return sorted(names)


def create(community_ids=None, years=None, overwrite=False, optimize=None,
           current_year_only=False, compute=None, progress=None, cache=None, cleanup=None):
    """Generate entries; the summary (§8.4 with separate skip counts, gap 17).

    ``compute(query, community, year, basis, components)`` returns a series
    set (default: :func:`default_compute`). ``progress(done, total, label)``
    is called per item. ``cleanup`` (default: when ``community_ids`` is
    ``"all"``) removes entries outside the plan (:func:`cleanup_entries`).
    """
    cache = cache or ResponseCache()
    compute = compute or default_compute
    optimize = cache.optimize_default() if optimize is None else bool(optimize)
    registry = cache.registry
    this_year = datetime.now(timezone.utc).year
    batch = plan(community_ids, years, current_year_only)
    categories, bases = category_names(cache.config), date_bases(cache.config)
    summary = {"success": 0, "failed": 0, "skipped": 0, "skipped_existing": 0,
               "skipped_incomplete": 0, "errors": [], "responses": [], "cleaned": 0,
               "first_run_completed": []}
    items = [(c, y, q, b) for c, ys in batch for y in ys for q in categories for b in bases]
    done = 0
    for community_id, span in batch:
        for year in span:
            registry.set(f"{community_id}_cache_{year}", str(datetime.now().timestamp()),
                         ex=7200)
        try:
            for year in span:
                flagged = bool(registry.exists(f"{community_id}_agg_updated_{year}"))
                complete_all = True
                for query in categories:
                    for basis in bases:
                        done += 1
                        if progress:
                            progress(done, len(items), f"{community_id}/{year}/{query}")
                        written = _one(cache, summary, compute, community_id, year, query,
                                       basis, optimize, overwrite or flagged
                                       or year == this_year)
                        complete_all &= written
                if flagged and complete_all:
                    registry.delete(f"{community_id}_agg_updated_{year}")
                if year == this_year and complete_all and \
                        registry.get(f"{community_id}_first_run") == b"in_progress":
                    registry.set(f"{community_id}_first_run", "completed")
                    summary["first_run_completed"].append(community_id)
        finally:
            for year in span:
                registry.delete(f"{community_id}_cache_{year}")
    summary["skipped"] = summary["skipped_existing"] + summary["skipped_incomplete"]
    if cleanup if cleanup is not None else community_ids == "all":
        # against every community's whole history, not the years of this batch
        full = batch if years in (None, "auto") and not current_year_only else plan(
            community_ids)
        summary["cleaned"] = cleanup_entries(cache, dict(full))
    return summary


def _one(cache, summary, compute, community_id, year, query, basis, optimize, regenerate):
    """One item; True when a complete entry is there afterwards."""
    components = key_components(community_id, optimize)
    key = cache.key(community_id, year, query, basis, optimize, components)
    if not regenerate and cache.exists_complete(key):
        summary["skipped_existing"] += 1
        return True
    try:
        generation = cache.generation(community_id, year)
        complete = cache.is_complete(community_id, year, query, basis)
        data = compute(query, community_id, year, basis, components)
        stored = cache.store(community_id, year, query, basis, data, complete, optimize,
                             generation, components)
    except Exception as exc:  # noqa: BLE001 - one item's failure is reported
        current_app.logger.warning("cache generation of %s/%s/%s failed", community_id,
                                   year, query, exc_info=True)
        summary["failed"] += 1
        summary["errors"].append({"community_id": community_id, "year": year,
                                  "category": query, "date_basis": basis, "cache_key": key,
                                  "error": f"{type(exc).__name__}: {exc}".splitlines()[0]})
        return False
    if not complete or not stored:
        summary["skipped_incomplete"] += 1
        return False
    summary["success"] += 1
    summary["responses"].append({"community_id": community_id, "year": year,
                                 "category": query, "date_basis": basis, "cache_key": key})
    return True


def cleanup_entries(cache, spans):
    """Delete entries of communities not in ``spans``, years outside them, old versions,
    and entries pruned for a layout the community no longer has.

    ``spans`` maps every community that should have entries to its years.
    Registry flags of communities that no longer exist go too (gap 19: the
    first-run flag of a deleted community).
    """
    layouts = {}

    def stale_layout(entry):  # pruned for components the community's layout no longer has
        if entry.get("components") is None:
            return False
        cid = entry["community_id"]
        if cid not in layouts:
            layouts[cid] = key_components(cid, True)
        return entry["components"] != layouts[cid]

    doomed = [e for e in cache.entries() if e.get("version") != cache.version
              or e["community_id"] not in spans or e["year"] not in spans[e["community_id"]]
              or stale_layout(e)]
    removed = cache.delete(doomed)
    for community_id in {e["community_id"] for e in doomed} - set(spans):
        if community_id != log.GLOBAL and not _exists(community_id):
            for key in cache.registry.scan_iter(match=f"{community_id}_*", count=500):
                cache.registry.delete(key)
    return removed


def _exists(community_id):
    from invenio_communities.communities.records.models import CommunityMetadata
    from invenio_communities.communities.records.systemfields.deletion_status import (
        CommunityDeletionStatusEnum,
    )

    row = CommunityMetadata.query.filter_by(id=community_id).one_or_none()
    return row is not None and row.deletion_status == CommunityDeletionStatusEnum.PUBLISHED
