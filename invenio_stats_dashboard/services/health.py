# Part of invenio-stats-dashboard (MIT License).
"""Whether a long job may start its next unit of work (spec 5.8, fixes G22).

The usage-event migration and re-enrichment ask before every record group;
the aggregations ask between their units. Three resources, two thresholds:
the host's memory and this process's share of it (``max_memory_percent``),
and the OpenSearch JVM heap (``max_heap_percent``) — a heap near its limit
says nothing about the host, and the reverse.

The cluster is asked twice (cluster health, node stats). A request that
fails is retried, unless the answer is one retrying cannot change (a 4xx
other than 408/429, e.g. 403 for a user without the cluster-monitor
privilege). A probe that still fails is reported *as such*
("probe failed: …", and in ``probe_failures``), never as a memory problem:

* no answer at all (connection refused, timeout): the cluster is
  unreachable, and the job stops — its next write would fail anyway;
* an error answer: the cluster works, only that measurement is missing —
  reported, but not unhealthy, or such a user could never run a job.

Readings that may pass are re-read before they count: the heap is a
sawtooth between garbage collections, and a cluster is red for a moment
whenever anyone creates an index (its primary is not yet assigned). Only a
heap that stays above the threshold, or a cluster that stays red, over
``attempts`` readings ``retry_delay`` apart, is unhealthy.
"""

import time

import psutil
from invenio_search.engine import search
from invenio_search.proxies import current_search_client


class HealthCheck:
    """Memory and cluster probes, configured by thresholds (percent)."""

    def __init__(self, max_memory_percent, max_heap_percent, client=None, attempts=3,
                 retry_delay=1.0, timeout=5):
        """Thresholds; each probe is tried ``attempts`` times, ``retry_delay`` s apart."""
        self.max_memory_percent = float(max_memory_percent)
        self.max_heap_percent = float(max_heap_percent)
        self.client = client or current_search_client
        self.attempts = max(1, int(attempts))
        self.retry_delay = retry_delay
        self.timeout = timeout

    def check(self):
        """``{is_healthy, reason, probe_failures}``; ``reason`` is ``ok`` when all is well."""
        memory = psutil.virtual_memory().percent
        if memory > self.max_memory_percent:
            return _result(False, f"host memory usage {memory:.0f}% above "
                                  f"{self.max_memory_percent:.0f}%")
        own = psutil.Process().memory_percent()
        if own > self.max_memory_percent:
            return _result(False, f"this process uses {own:.1f}% of memory, "
                                  f"above {self.max_memory_percent:.0f}%")
        failures = []
        red = self._probe("cluster health", lambda: self._lasting(
            self._status, lambda status: status == "red"), failures)
        if red is _UNREACHABLE:
            return _result(False, f"probe failed: {failures[-1]}", failures)
        if red:
            return _result(False, f"cluster status is red (in {self.attempts} readings)",
                           failures)
        heap = self._probe("OpenSearch heap", lambda: self._lasting(
            self._heap, lambda percent: percent > self.max_heap_percent), failures)
        if heap is _UNREACHABLE:
            return _result(False, f"probe failed: {failures[-1]}", failures)
        if heap:
            return _result(False, f"OpenSearch heap {min(heap)}% above "
                                  f"{self.max_heap_percent:.0f}% (in {self.attempts} readings)",
                           failures)
        if failures:
            return _result(True, "ok; probe failed: " + "; ".join(failures), failures)
        return _result(True, "ok")

    def _status(self):
        return self.client.cluster.health(request_timeout=self.timeout).get("status")

    def _heap(self):
        stats = self.client.nodes.stats(metric="jvm", request_timeout=self.timeout)
        return max(node["jvm"]["mem"]["heap_used_percent"]
                   for node in stats.get("nodes", {}).values())

    def _lasting(self, read, bad):
        """Up to ``attempts`` readings while ``bad``: all of them if all are, else None."""
        readings = []
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.retry_delay)
            readings.append(read())
            if not bad(readings[-1]):
                return None
        return readings

    def _probe(self, name, call, failures):
        """``call()``, retried; on lasting failure note it and return None or _UNREACHABLE."""
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 - any failure is a failed probe
                error = exc
                if _definitive(exc) or attempt == self.attempts:
                    break
            time.sleep(self.retry_delay)
        unreachable = isinstance(error, search.exceptions.ConnectionError)
        tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
        failures.append(f"{name} ({'cluster unreachable, ' if unreachable else ''}{tries}): "
                        f"{_describe(error)}")
        return _UNREACHABLE if unreachable else None


_UNREACHABLE = object()


def _result(healthy, reason, failures=()):
    return {"is_healthy": healthy, "reason": reason, "probe_failures": list(failures)}


def _definitive(error):
    """An error answer that asking again cannot change (403, 404, …; not 408 or 429)."""
    status = getattr(error, "status_code", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)


def _describe(error):
    """One line: the exception type, and the status and error type if the cluster answered."""
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        return f"{type(error).__name__} {status} {getattr(error, 'error', '')}".strip()
    return f"{type(error).__name__}: {error}"
