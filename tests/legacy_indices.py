# Part of invenio-stats-dashboard (MIT License).
"""Legacy monthly event indices as InvenioRDM makes them, before our package.

An instance that installs the package already has monthly
``events-stats-{record-view,file-download}-YYYY-MM`` indices created from
InvenioRDM's *stock* templates (strict, no ``community_ids``). The migration
must be exercised on those, not on indices our v2 template (priority 110,
same index pattern) has already shaped. ``create_stock_months`` creates them
from InvenioRDM's stock template bodies while our event templates are
absent — a composable template would otherwise be merged into the explicit
mapping — then puts our templates back. Index legacy events afterwards.
"""

import json
from importlib.resources import files

from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from invenio_stats_dashboard.search_indices.event_builders import EnrichedEventsIndexer
from invenio_stats_dashboard.search_indices.templates import (
    EVENT_TEMPLATE_PACKAGES,
    put_index_templates,
)

STEMS = ("record-view", "file-download")
STOCK_PACKAGE = "invenio_rdm_records.records.stats.templates.events.{}"


def stock_template(stem):
    """InvenioRDM 13's legacy template body for ``stem``, with this run's prefix."""
    package = STOCK_PACKAGE.format(stem.replace("-", "_"))
    text = (files(package) / "os-v2" / f"{stem}-v1.0.0.json").read_text()
    return json.loads(text.replace("__SEARCH_INDEX_PREFIX__", prefix_index("")))


def stock_mapping(stem):
    """The mapping InvenioRDM gives a new monthly ``stem`` index."""
    return stock_template(stem)["mappings"]


def create_stock_months(months, stems=STEMS):
    """Create ``{prefix}events-stats-<stem>-<month>`` with the stock template; returns names.

    Months that already exist are left as they are (and must be stock).
    """
    client = current_search_client
    ours = [prefix_index(f"{stem}-v2.0.0") for stem in STEMS]
    names = []
    try:
        for name in ours:
            client.indices.delete_index_template(name=name, ignore=[404])
        for stem in stems:
            body = stock_template(stem)
            for month in months:
                name = prefix_index(f"events-stats-{stem}-{month}")
                if not client.indices.exists(index=name):
                    client.indices.create(index=name, body={
                        key: body[key] for key in ("settings", "mappings", "aliases")})
                names.append(name)
    finally:
        put_index_templates(EVENT_TEMPLATE_PACKAGES, strict=True)
    # The indexer caches each index's mapping; a name reused by an earlier
    # module of this run may be cached with that index's (enriched) mapping.
    EnrichedEventsIndexer._mappings.clear()
    for name in names:
        assert_stock(name)
    return names


def assert_stock(index):
    """``index`` has exactly InvenioRDM's stock mapping (none of our fields)."""
    stem = next(s for s in STEMS if f"events-stats-{s}-" in index)
    mapping = current_search_client.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping == stock_mapping(stem), (index, sorted(mapping.get("properties", {})))
    assert "community_ids" not in mapping["properties"]
