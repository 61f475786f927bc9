# Part of invenio-stats-dashboard (MIT License).
"""Health between units of work (migration groups, aggregation units).

A run stops cleanly, bookmarks in place, when the host or this process uses
too much memory, OpenSearch's heap is too full, or the cluster is red.
"""

import psutil


def check_health(client, settings):
    """``{is_healthy, reason}`` against ``settings.max_memory_percent``."""
    limit = float(settings.max_memory_percent)
    memory = psutil.virtual_memory().percent
    if memory > limit:
        return {"is_healthy": False, "reason": f"memory usage {memory:.0f}% above {limit:.0f}%"}
    own = psutil.Process().memory_percent()
    if own > limit:
        return {"is_healthy": False,
                "reason": f"this process uses {own:.1f}% of memory, above {limit:.0f}%"}
    try:
        health = client.cluster.health(request_timeout=5)
        if health.get("status") == "red":
            return {"is_healthy": False, "reason": "cluster status is red"}
        stats = client.nodes.stats(metric="jvm", request_timeout=5)
        for node in stats.get("nodes", {}).values():
            heap = node["jvm"]["mem"]["heap_used_percent"]
            if heap > limit:
                return {"is_healthy": False, "reason": f"OpenSearch heap {heap}% above {limit:.0f}%"}
    except Exception as exc:
        return {"is_healthy": False, "reason": f"cluster unreachable: {exc}"}
    return {"is_healthy": True, "reason": "ok"}
