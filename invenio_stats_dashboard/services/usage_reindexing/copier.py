# Part of invenio-stats-dashboard (MIT License).
"""Group-by-group server-side copy with ordered bookmarks (migration and re-enrichment).

``source == target`` means re-enrichment in place (``_update_by_query``);
otherwise events are copied with ``_reindex``. Both run the same script
(``server_side``).
"""

from collections import deque
from concurrent.futures import ThreadPoolExecutor

from flask import current_app
from invenio_search.proxies import current_search_client
from opensearchpy.exceptions import TransportError

from ...search_indices.templates import add_missing_event_fields
from . import server_side


class GroupCopier:
    """Server-side copy of one query's events from source to target, enriched.

    ``conflicts=proceed`` in place: an event rewritten meanwhile by the live
    indexer already carries the live (current) enrichment.
    """

    def __init__(self, service, source, target, extractor, result, settings, stop=None):
        """``stop()`` returns why the run must stop now (health, cancel), or None."""
        self.service, self.source, self.target = service, source, target
        self.extractor, self.result, self.settings = extractor, result, settings
        self.stop = stop or (lambda: None)
        self.app = current_app._get_current_object()
        # a target made by an earlier version gets the fields added since (file_ref)
        self.mapping = add_missing_event_fields(service.client, target)

    def copy(self, query, recids):
        """Copy now (safe in a worker thread).

        Returns ``(events copied, records the records index lacks, records
        the membership log does not know)``; the first get communities but no
        metadata, the second no communities.
        """
        with self.app.app_context():
            params = server_side.group_params(sorted(recids), self.extractor, self.mapping,
                                              mark=self.source != self.target)
            unknown = params.pop("unknown")
            size = min(max(self.settings.batch_size, 100), 10_000)
            throttle = {}
            if self.settings.requests_per_second:
                throttle["requests_per_second"] = self.settings.requests_per_second
            try:
                if self.source == self.target:  # re-enrichment in place
                    response = current_search_client.update_by_query(
                        index=self.target, body={"query": query,
                                                 "script": server_side.script(params)},
                        conflicts="proceed", scroll_size=size, refresh=False,
                        wait_for_completion=True, request_timeout=3600, **throttle)
                else:
                    response = current_search_client.reindex(body={
                        "source": {"index": self.source, "query": query, "size": size},
                        "dest": {"index": self.target},
                        "script": server_side.script(params)},
                        refresh=False, wait_for_completion=True, request_timeout=3600,
                        **throttle)
            except TransportError as exc:  # rejected documents come back as a 400
                if isinstance(exc.info, dict) and exc.info.get("failures"):
                    server_side.raise_on_failures(exc.info)
                raise
        server_side.raise_on_failures(response)
        missing = set(recids) - set(params["meta"])
        return (response["total"], sorted(missing),
                sorted(set(unknown) - missing))  # purged records: nothing can be known

    def count(self, outcome):
        """Account a finished copy in the month's result."""
        total, without_metadata, without_history = outcome
        if without_metadata:
            self.result.setdefault("records_without_metadata", []).extend(without_metadata)
        if without_history:
            self.result.setdefault("records_without_history", []).extend(without_history)
        if total:
            self.result["processed"] += total
            self.result["batches"] += 1

    def __call__(self, query, recids):
        """Copy and account, in the calling thread."""
        self.count(self.copy(query, recids))

    def copy_groups(self, task_id, after, limit, progress=None, config_hash=None,
                    groups=None, extra=None):
        """Copy record groups, ``parallel`` in flight; bookmark strictly in order.

        While the server copies one group, the next group's params are read
        and its copy runs on the other core. The bookmark only moves past a
        group when it and every group before it are done, so a kill redoes
        at most the groups in flight (same ids: overwritten, not doubled).
        """
        service, result, parallel = self.service, self.result, self.settings.parallel_groups
        bookmarks = service.reindexing_bookmark_api
        pending, submitted = deque(), 0
        extra = extra or {}

        def mark(last_recid):  # in the single bookmark thread: writes stay in order
            with self.app.app_context():
                bookmarks.set_bookmark(task_id, last_record_id=last_recid,
                                       config_hash=config_hash, **extra)

        def settle_oldest():
            group, future = pending.popleft()
            self.count(future.result())
            if task_id:  # partial re-enrichment keeps no position
                marks.append(marker.submit(mark, group[-1]))
            if progress:
                progress(result["event_type"], result["month"], result["processed"])

        marks = []
        if groups is None:
            groups = server_side.record_groups(service.client, self.source, after,
                                               self.settings.batch_size)
        with ThreadPoolExecutor(max_workers=parallel) as pool, \
                ThreadPoolExecutor(max_workers=1) as marker:
            try:
                for group in groups:
                    if submitted >= limit:
                        result["interrupted"] = True
                        break
                    reason = self.stop()
                    if reason:
                        result.update(interrupted=True, health_issue=reason)
                        break
                    pending.append((group, pool.submit(self.copy, {"terms": {"recid": group}},
                                                       group)))
                    submitted += 1
                    if len(pending) >= parallel:
                        settle_oldest()
                while pending:
                    settle_oldest()
            finally:  # on error, later groups may finish but the bookmark stays behind
                for _, future in pending:
                    future.cancel()
        for future in marks:
            future.result()  # a failed bookmark write fails the month
