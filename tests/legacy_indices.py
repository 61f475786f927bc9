# Part of invenio-stats-dashboard (MIT License).
"""Legacy monthly event indices as InvenioRDM makes them, before our package.

An instance that installs the package already has monthly
``events-stats-{record-view,file-download}-YYYY-MM`` indices created from
InvenioRDM's *stock* templates (strict, no ``community_ids``). The migration
must be exercised on those, not on indices our v2 template (priority 110,
same index pattern) has already shaped: ``search_indices.stock`` makes them
(through a one-off template for exactly that name, so ours stay in place),
and these helpers check that they are stock.
"""

from collections import defaultdict

from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from invenio_stats_dashboard.utils.usage_events import index_events
from invenio_stats_dashboard.search_indices.event_builders import EnrichedEventsIndexer
from invenio_stats_dashboard.search_indices.stock import create_stock_month, stock_body

STEMS = ("record-view", "file-download")


def stock_mapping(stem):
    """The mapping InvenioRDM gives a new monthly ``stem`` index."""
    return stock_body(stem)["mappings"]


def create_stock_months(months, stems=STEMS):
    """Create ``{prefix}events-stats-<stem>-<month>`` with the stock mapping; returns names.

    Months that already exist are left as they are (and must be stock).
    """
    names = [create_stock_month(stem, month) for stem in stems for month in months]
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


def index_legacy(planned):
    """Index planned raw events into stock-mapped monthly indices (checked)."""
    months = defaultdict(set)
    for stem, events in planned.items():
        for event in events:
            months[stem].add(event["timestamp"][:7])
    for stem, found in months.items():
        create_stock_months(sorted(found), [stem])
    index_events(planned)
    current_search_client.indices.refresh(index=prefix_index("events-stats-*"))
