# Part of invenio-stats-dashboard (MIT License).
"""Legacy (pre-installation) usage-event months, with InvenioRDM's stock mapping.

An instance that installs the package has monthly event indices created from
InvenioRDM's own templates; the migration must be exercised on exactly those
(``search_indices.stock``), and the tests check that they are.
"""

from collections import defaultdict

from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from invenio_stats_dashboard.demo.usage_events import index_events
from invenio_stats_dashboard.search_indices.stock import create_stock_month, stock_body


def assert_stock(index, stem):
    """The index carries exactly InvenioRDM's stock fields (none of ours)."""
    props = current_search_client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert set(props) == set(stock_body(stem)["mappings"]["properties"]), sorted(props)


def index_legacy(planned):
    """Index planned raw events into stock-mapped monthly indices (checked)."""
    months = defaultdict(set)
    for stem, events in planned.items():
        for event in events:
            months[stem].add(event["timestamp"][:7])
    for stem, found in months.items():
        for month in found:
            index = create_stock_month(stem, month)
            if current_search_client.indices.exists(index=index) and not \
                    current_search_client.indices.exists_alias(name=index):
                assert_stock(index, stem)
    index_events(planned)
    current_search_client.indices.refresh(index=prefix_index("events-stats-*"))
