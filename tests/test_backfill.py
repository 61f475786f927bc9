# Part of invenio-stats-dashboard (MIT License).
"""Backfill of the membership log, its CLI, bad input, and >10,000-event reads.

The oracle is computed from the database (RDM record rows: parent
communities, deletion status), not from the search index the backfill reads.
"""

from collections import Counter

import pytest
from invenio_search.proxies import current_search_client
from opensearchpy import helpers

from invenio_stats_dashboard.cli import cli
from invenio_stats_dashboard.demo import rdm
from invenio_stats_dashboard.services import events_log as log
from invenio_stats_dashboard.services.service import CommunityStatsService

from oracles import log_pairs, oracle_pairs, wipe_log


@pytest.fixture(scope="module")
def corpus(make_record, identities, communities):
    """~25 records in several communities, one deleted, one with two versions."""
    owner = identities["owner"]
    ids = [c.id for c in communities.values() if c.data["access"]["visibility"] == "public"]
    made = []
    for n in range(22):
        community = ids[n % len(ids)] if n % 3 else None
        made.append(make_record(community_id=community))
    rdm.add_to_community(owner, made[1].id, ids[0])
    rdm.new_version(owner, made[2].id, publication_date="2025-02-02")
    rdm.delete_record(made[4].id)
    return made


@pytest.fixture()
def small_pages(services):
    services.config["COMMUNITY_STATS_BACKFILL_PAGE_SIZE"] = 7
    yield
    services.config["COMMUNITY_STATS_BACKFILL_PAGE_SIZE"] = 500


def test_backfill_rebuilds_the_log_exactly_and_is_idempotent(corpus, small_pages):
    expected = oracle_pairs()
    assert sum(expected.values()) > 40
    wipe_log()
    service = CommunityStatsService()
    calls = []
    records, created, existing = service.generate_record_community_events(
        progress=lambda done, total: calls.append((done, total)))
    assert created == sum(expected.values())
    assert existing == 0
    assert len(calls) >= 4  # several pages of 7
    assert calls[-1][0] == calls[-1][1] == records
    assert log_pairs() == expected
    # Re-running adds nothing.
    assert service.generate_record_community_events()[1] == 0
    assert log_pairs() == expected
    counts = service.count_records_needing_events()
    assert counts["records_needing_events"] == 0 and counts["total_events_needed"] == 0


def test_backfill_limited_to_a_community(corpus, communities, small_pages):
    alpha = communities["alpha"].id
    wipe_log()
    CommunityStatsService().generate_record_community_events(
        community_ids=[communities["alpha"].data["slug"]])  # slugs resolve to ids
    found = log_pairs()
    assert found and {c for (_, c, _) in found} == {alpha}
    assert found == Counter({k: v for k, v in oracle_pairs().items() if k[1] == alpha})


def test_backfill_dates_come_from_history(corpus):
    """Backfilled 'added' events are dated at creation, not at the backfill run."""
    wipe_log()
    record = corpus[0]
    from datetime import datetime

    rdm.backdate_record(record.id, datetime(2023, 6, 1, 8, 30))
    wipe_log()
    CommunityStatsService().generate_record_community_events(recids=[record.id])
    log.refresh()
    hit = current_search_client.search(index=log.alias_name(), body={"query": {"bool": {
        "filter": [{"term": {"record_id": record.id}},
                   {"term": {"community_id": "global"}}]}}})["hits"]["hits"][0]["_source"]
    assert hit["event_date"].startswith("2023-06-01T08:30:00")
    assert hit["record_created_date"].startswith("2023-06-01T08:30:00")


def run_cli(app, *args):
    return app.test_cli_runner().invoke(cli, list(args))


@pytest.mark.parametrize("args, message", [
    (["--community-id", "no-such-community"], "Unknown community id or slug: no-such-community"),
    (["--record-ids", "abcde-fghij"], "Unknown record id: abcde-fghij"),
    (["--start-date", "2024-13-45"], "Malformed start date '2024-13-45'"),
    (["--start-date", "2025-01-02", "--end-date", "2025-01-01"], "start date is after"),
])
def test_bad_input_writes_nothing(services, corpus, args, message):
    wipe_log()
    for command in (["generate"], ["generate-background"], ["status"]):
        result = run_cli(services, "community-events", *command, *args)
        assert result.exit_code == 1, (command, result.output, result.exception)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert lines[-1].startswith("Error: ") and message in lines[-1]
    assert sum(log_pairs().values()) == 0


def test_cli_generate_and_status(services, corpus):
    wipe_log()
    result = run_cli(services, "community-events", "status")
    assert result.exit_code == 0, result.output
    assert "global" in result.output and "] 0.0%" in result.output
    expected = oracle_pairs()
    result = run_cli(services, "community-events", "generate", "--no-show-progress")
    assert result.exit_code == 0, result.output
    assert f"New events created:     {sum(expected.values())}" in result.output
    result = run_cli(services, "community-events", "generate")
    assert "All records already have the required community events!" in result.output
    result = run_cli(services, "community-events", "status")
    assert "Records missing events:  0" in result.output
    assert "] 100.0%" in result.output and "] 0.0%" not in result.output


def test_latest_states_reads_more_than_10000_events(services):
    """3,000 pairs × 4 alternating events = 12,000 documents through the query path."""
    actions, expected = [], {}
    for pair in range(3000):
        record_id, community = f"big-{pair // 30:04d}", f"com-{pair % 30:02d}"
        for step, event_type in enumerate(["added", "removed", "added", "removed"][: 1 + pair % 4]):
            when = f"2024-01-{1 + step:02d}T00:00:00+00:00"
            actions.append(log.make_event(record_id, community, event_type, when))
            expected[(record_id, community)] = event_type
    while len(actions) < 12_000:  # pad with older duplicates on other instants
        n = len(actions)
        actions.append(log.make_event(f"big-{n % 100:04d}", "com-00", "added",
                                      f"2020-01-01T00:{n % 60:02d}:{n // 60 % 60:02d}+00:00"))
    helpers.bulk(current_search_client, actions, refresh=True)
    total = current_search_client.count(index=log.alias_name(), body={
        "query": {"prefix": {"record_id": "big-"}}})["count"]
    assert total >= 10_000
    states = log.latest_states(sorted({r for r, _ in expected}))
    assert {k: s.event_type for k, s in states.items()} == expected


def test_activity_filters_and_event_counts(corpus, communities):
    from invenio_stats_dashboard.services.community_events import (
        CommunityRecordEventsService,
    )

    wipe_log()
    CommunityStatsService().generate_record_community_events()
    expected = Counter()
    for (_, community, _), n in oracle_pairs().items():
        expected[community] += n
    service = CommunityRecordEventsService()
    assert service.events_per_community() == dict(expected)
    alpha, beta = communities["alpha"].id, communities["beta"].id
    active = service.filter_communities_by_activity()
    assert set(active) == {alpha, beta}  # never "global"; secret has no records
    assert service.filter_communities_by_activity(record_threshold=expected[alpha] + 1) == (
        [beta] if expected[beta] > expected[alpha] else [])
    assert service.filter_communities_by_activity(first_active="2000-01-01") == []
