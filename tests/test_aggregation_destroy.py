# Part of invenio-stats-dashboard (MIT License).
"""``destroy-indices``: this instance's statistics indices only, never the only copy of events.

Its own module: it deletes the membership log of the run.
"""

import pytest
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from invenio_stats_dashboard.cli import cli
from invenio_stats_dashboard.services import events_log as log

import agg_family
from agg_helpers import TYPES, read_all, reset
from conftest import RUN_PREFIX
from legacy_indices import create_stock_months

OTHER = f"other-{RUN_PREFIX}stats-community-events-2024"  # another instance's log
pytestmark = pytest.mark.usefixtures("agg_test_family")


def names(pattern):
    return set(current_search_client.indices.get(index=prefix_index(pattern),
                                                 ignore_unavailable=True,
                                                 allow_no_indices=True))


def test_destroy_indices_asks_then_deletes_this_instances_indices(services, make_record):
    client = current_search_client
    reset()
    record = make_record()  # a membership log with something in it
    log.refresh()
    # The engine modules' build_history leaves the family restricted (in Redis) to
    # their own records: count this one, or in some orders nothing is aggregated.
    agg_family.count_only([record.id])
    runner = services.test_cli_runner()
    done = runner.invoke(cli, ["aggregate", "--force", *TYPES, "--community-id", "global"])
    assert done.exit_code == 0, done.output
    create_stock_months(["2023-01"])  # migrated: the stock month is still there
    client.indices.create(index=prefix_index("events-stats-record-view-2023-01-v2.0.0"))
    only_copy = prefix_index("events-stats-record-view-2023-02-v2.0.0")
    client.indices.create(index=only_copy)  # its stock month was deleted after migration
    client.indices.create(index=OTHER)
    try:
        ours = (names("stats-community-*") | names("stats-bookmarks-community*")
                | names("events-stats-record-view-2023-01-v2.0.0"))
        assert len(ours) >= 4 and read_all()
        declined = runner.invoke(cli, ["destroy-indices"], input="n\n")
        assert declined.exit_code == 1 and "Aborted!" in declined.stderr
        dry = runner.invoke(cli, ["destroy-indices", "--dry-run"])
        assert dry.exit_code == 0 and f"Kept {only_copy}: the only copy" in dry.stdout
        assert all(name in dry.stdout for name in ours) and OTHER not in dry.stdout
        assert names("stats-community-*") | names("stats-bookmarks-community*") <= ours
        result = runner.invoke(cli, ["destroy-indices", "--yes"])
        assert result.exit_code == 0, result.output
        assert f"Deleted {len(ours)} indices" in result.stdout
        assert not names("stats-community-*") and not names("stats-bookmarks-*")
        assert not names("events-stats-record-view-2023-01-v2.0.0")
        assert names("events-stats-record-view-2023-01") == {
            prefix_index("events-stats-record-view-2023-01")}  # the stock month stays
        assert client.indices.exists(index=only_copy) and client.indices.exists(index=OTHER)
    finally:
        client.indices.delete(index=OTHER, ignore=[404])
        agg_family.count_only([])  # back to counting every record
