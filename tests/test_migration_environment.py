# Part of invenio-stats-dashboard (MIT License).
"""The migration in the environments it meets: upstream's bookmark index, health probes.

Two legacy months with InvenioRDM's stock mapping, one per test, so the tests
pass in any order. The expected counts and communities come from the planned
events and the membership history written here.
"""

import socket
from datetime import timedelta

import arrow
import pytest
from invenio_search.engine import search
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from invenio_stats_dashboard.utils.usage_events import (
    RecordTarget,
    expected_counts,
    index_events,
    plan_events,
)
from invenio_stats_dashboard.proxies import current_event_reindexing_service
from invenio_stats_dashboard.services import events_log as log
from invenio_stats_dashboard.services.health import HealthCheck
from invenio_stats_dashboard.services.usage_reindexing.bookmarks import (
    EventReindexingBookmarkAPI,
)

from fault_proxy import (
    FaultProxy,
    is_node_stats,
    node_stats_forbidden,
    red_cluster,
    rejected_execution,
)
from legacy_indices import create_stock_months
from oracles import wipe_log

MONTH_A, MONTH_B = (arrow.utcnow().shift(months=-k).floor("month") for k in (7, 6))
#: Upstream's ``stats-bookmarks-reindexing`` (spec 2.8), exactly as its package creates it.
UPSTREAM_BOOKMARKS = {"dynamic": "strict", "properties": {
    "task_id": {"type": "keyword"},
    "last_event_id": {"type": "keyword"},
    "last_event_timestamp": {"type": "date", "format": "date_optional_time"}}}


@pytest.fixture(scope="module")
def data(services, make_record, communities):
    from invenio_rdm_records.proxies import current_rdm_records_service

    alpha = communities["alpha"].id
    member, loner = make_record(), make_record(files={"a.csv": b"1"})
    wipe_log()
    log.write([log.make_event(r.id, "global", "added", MONTH_A.shift(days=-40).isoformat())
               for r in (member, loner)]
              + [log.make_event(member.id, alpha, "added", MONTH_A.shift(days=-30).isoformat())])
    resolve = current_rdm_records_service.record_cls.pid.resolve
    targets = [RecordTarget.from_record(resolve(r.id), created=MONTH_A.datetime)
               for r in (member, loner)]
    planned = plan_events(targets, per_record=30, start=MONTH_A.datetime,
                          end=MONTH_B.shift(months=1).datetime - timedelta(seconds=1), seed=5,
                          download_ratio=1.0)
    create_stock_months([m.format("YYYY-MM") for m in (MONTH_A, MONTH_B)])
    index_events(planned)
    current_search_client.indices.refresh(index=prefix_index("events-stats-*"))
    return {"expected": expected_counts(planned), "communities": {member.id: [alpha],
                                                                  loner.id: []}}


#: These tests are not about memory: thresholds no busy test machine crosses.
HEALTHY = {"max_memory_percent": 100, "max_heap_percent": 100}


@pytest.fixture()
def service(services):
    return current_event_reindexing_service._get_current_object()


def assert_migrated(data, month):
    """Every event of ``month`` in its enriched index, with the oracle's communities."""
    for stem in ("record-view", "file-download"):
        target = prefix_index(f"events-stats-{stem}-{month}-v2.0.0")
        current_search_client.indices.refresh(index=target)
        docs = [h["_source"] for h in search.helpers.scan(current_search_client, index=target)]
        assert len(docs) == data["expected"][(stem, month)] > 5
        assert all(d["community_ids"] == data["communities"][d["recid"]] for d in docs)


# --- item 3: an instance that ran upstream's package ------------------------

def test_migration_on_upstreams_bookmark_index(data, service):
    """Upstream's strict three-field bookmark index gets our fields and keeps its documents."""
    month = MONTH_A.format("YYYY-MM")
    index = prefix_index("stats-bookmarks-reindexing")
    current_search_client.indices.delete(index=index, ignore=[404])
    current_search_client.indices.create(index=index, body={"mappings": UPSTREAM_BOOKMARKS})
    upstream_doc = {"task_id": "view-2019-01-reindexing", "last_event_id": "abc",
                    "last_event_timestamp": "2019-01-05T10:00:00"}
    current_search_client.index(index=index, id=upstream_doc["task_id"], body=upstream_doc,
                                refresh=True)

    report = service.reindex_events(month_filter=month, **HEALTHY)
    assert report["completed"] and report["total_errors"] == 0, report
    assert_migrated(data, month)
    bookmarks = service.reindexing_bookmark_api
    for event_type in ("view", "download"):
        assert bookmarks.get_bookmark(f"{event_type}-{month}-reindexing")["completed"] is True
    mapping = current_search_client.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["dynamic"] == "strict"
    assert mapping["properties"] == EventReindexingBookmarkAPI.MAPPING["properties"]
    assert bookmarks.get_bookmark("view-2019-01-reindexing") == upstream_doc


# --- item 10: health ------------------------------------------------------------

def test_heap_has_its_own_threshold(services, monkeypatch):
    """The heap is compared with STATS_DASHBOARD_REINDEXING_MAX_HEAP_PERCENT, not the memory one."""
    from invenio_stats_dashboard.services.usage_reindexing import EventReindexingService

    def checked(memory, heap):
        monkeypatch.setitem(services.config, "STATS_DASHBOARD_REINDEXING_MAX_MEMORY_PERCENT",
                            memory)
        monkeypatch.setitem(services.config, "STATS_DASHBOARD_REINDEXING_MAX_HEAP_PERCENT", heap)
        return EventReindexingService(services).check_health_conditions()

    result = checked(memory=100, heap=0)  # a live JVM always uses some heap
    assert not result["is_healthy"] and result["reason"].startswith("OpenSearch heap "), result
    assert "above 0%" in result["reason"] and "memory" not in result["reason"]
    result = checked(memory=100, heap=100)
    assert result == {"is_healthy": True, "reason": "ok", "probe_failures": []}
    result = checked(memory=0, heap=100)  # the host uses some memory too
    assert not result["is_healthy"] and "host memory usage" in result["reason"]


def test_forbidden_heap_probe_is_reported_not_unhealthy(services):
    """403 on node stats (no monitor privilege): a failed probe, not an unhealthy cluster.

    Asking again cannot change a 403, so it is asked once per check.
    """
    with FaultProxy(node_stats_forbidden) as proxy:
        client = search.OpenSearch(hosts=[{"host": "127.0.0.1", "port": proxy.port}])
        result = HealthCheck(100, 0, client=client, retry_delay=0.05).check()
        refused = [r for r in proxy.requests if r[2]]
    assert result["is_healthy"], result
    assert result["reason"] == ("ok; probe failed: OpenSearch heap (1 attempt): "
                                "AuthorizationException 403 security_exception")
    assert len(refused) == 1 and len(result["probe_failures"]) == 1


@pytest.mark.parametrize("refusals", [1, 3])
def test_a_busy_node_is_asked_again(services, refusals):
    """429 on node stats: retried; answered on a later attempt the heap is measured
    (threshold 0: over it, three readings), refused every time it is a failed probe."""
    calls = []

    def busy(method, path):
        if not is_node_stats(path):
            return None
        calls.append(path)
        return rejected_execution() if len(calls) <= refusals else None

    with FaultProxy(busy) as proxy:
        client = search.OpenSearch(hosts=[{"host": "127.0.0.1", "port": proxy.port}])
        result = HealthCheck(100, 0, client=client, retry_delay=0.05).check()
    if refusals == 1:
        assert not result["is_healthy"] and result["reason"].startswith("OpenSearch heap ")
        assert result["probe_failures"] == [] and len(calls) == 1 + 3, (result, calls)
    else:
        assert result["is_healthy"] and len(calls) == 3, (result, calls)
        assert result["reason"] == ("ok; probe failed: OpenSearch heap (3 attempts): "
                                    "TransportError 429 rejected_execution_exception")


@pytest.mark.parametrize("red_readings", [1, 3])
def test_red_counts_only_when_it_lasts(services, red_readings):
    """A cluster is red for a moment whenever any index is created: re-read before stopping."""
    seen = []

    def red_at_first(method, path):
        if path.startswith("/_cluster/health"):
            seen.append(path)
            return red_cluster() if len(seen) <= red_readings else None
        return None

    with FaultProxy(red_at_first) as proxy:
        client = search.OpenSearch(hosts=[{"host": "127.0.0.1", "port": proxy.port}])
        result = HealthCheck(100, 100, client=client, retry_delay=0.05).check()
    if red_readings == 1:
        assert result == {"is_healthy": True, "reason": "ok", "probe_failures": []}
        assert len(seen) == 2
    else:
        assert result["reason"] == "cluster status is red (in 3 readings)" and len(seen) == 3
        assert not result["is_healthy"]


def test_unreachable_cluster_is_a_failed_probe_and_unhealthy(services):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = search.OpenSearch(hosts=[{"host": "127.0.0.1", "port": port}], max_retries=0)
    result = HealthCheck(100, 100, client=client, retry_delay=0.05, timeout=1).check()
    assert not result["is_healthy"]
    assert result["reason"].startswith(
        "probe failed: cluster health (cluster unreachable, 3 attempts): ConnectionError"), result


def test_migration_where_node_stats_are_refused(data, create_app, app_config):
    """A whole app whose cluster refuses node stats (403) still migrates, saying why."""
    month = MONTH_B.format("YYYY-MM")
    with FaultProxy(node_stats_forbidden) as proxy:
        app = create_app(**{**app_config,
                            "SEARCH_HOSTS": [{"host": "127.0.0.1", "port": proxy.port}],
                            # invenio-search fills "hosts" into this dict: a fresh one
                            "SEARCH_CLIENT_CONFIG": {"timeout": 60},
                            "STATS_DASHBOARD_REINDEXING_MAX_MEMORY_PERCENT": 100})
        with app.app_context():
            service = current_event_reindexing_service._get_current_object()
            health = service.check_health_conditions()
            report = service.reindex_events(month_filter=month)
        assert any(refused for _, _, refused in proxy.requests), proxy.requests[:20]
    assert health["is_healthy"] and "probe failed: OpenSearch heap" in health["reason"], health
    assert report["completed"] and not report["health_issues"], report
    assert_migrated(data, month)
