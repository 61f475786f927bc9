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

from . import server_side


class GroupCopier:
    """Server-side copy of one query's events from source to target, enriched.

    ``conflicts=proceed`` in place: an event rewritten meanwhile by the live
    indexer already carries the live (current) enrichment.
    """

    def __init__(self, service, source, target, extractor, result):
        self.service, self.source, self.target = service, source, target
        self.extractor, self.result = extractor, result
        self.app = current_app._get_current_object()
        mapping = service.client.indices.get_mapping(index=target)[target]["mappings"]
        self.mapping = mapping.get("properties", {})

    def copy(self, query, recids):
        """Copy now (safe in a worker thread).

        Returns ``(events copied, ids of records the records index lacks)``;
        such records' events get communities but no metadata.
        """
        with self.app.app_context():
            params = server_side.group_params(sorted(recids), self.extractor, self.mapping)
            size = min(max(self.service.batch_size, 1000), 10_000)
            try:
                if self.source == self.target:  # re-enrichment in place
                    response = current_search_client.update_by_query(
                        index=self.target, body={"query": query,
                                                 "script": server_side.script(params)},
                        conflicts="proceed", scroll_size=size, refresh=False,
                        wait_for_completion=True, request_timeout=3600)
                else:
                    response = current_search_client.reindex(body={
                        "source": {"index": self.source, "query": query, "size": size},
                        "dest": {"index": self.target},
                        "script": server_side.script(params)},
                        refresh=False, wait_for_completion=True, request_timeout=3600)
            except TransportError as exc:  # rejected documents come back as a 400
                if isinstance(exc.info, dict) and exc.info.get("failures"):
                    server_side.raise_on_failures(exc.info)
                raise
        server_side.raise_on_failures(response)
        return response["total"], sorted(set(recids) - set(params["meta"]))

    def count(self, outcome):
        """Account a finished copy in the month's result."""
        total, unknown = outcome
        if unknown:
            self.result.setdefault("records_without_metadata", []).extend(unknown)
        if total:
            self.result["processed"] += total
            self.result["batches"] += 1

    def __call__(self, query, recids):
        """Copy and account, in the calling thread."""
        self.count(self.copy(query, recids))

    def copy_groups(self, task_id, after, limit, progress=None, config_hash=None):
        """Copy record groups, ``parallel`` in flight; bookmark strictly in order.

        While the server copies one group, the next group's params are read
        and its copy runs on the other core. The bookmark only moves past a
        group when it and every group before it are done, so a kill redoes
        at most the groups in flight (same ids: overwritten, not doubled).
        """
        service, result = self.service, self.result
        bookmarks = service.reindexing_bookmark_api
        pending, submitted = deque(), 0

        def mark(last_recid):  # in the single bookmark thread: writes stay in order
            with self.app.app_context():
                bookmarks.set_bookmark(task_id, last_record_id=last_recid,
                                       config_hash=config_hash)

        def settle_oldest():
            group, future = pending.popleft()
            self.count(future.result())
            marks.append(marker.submit(mark, group[-1]))
            if progress:
                progress(result["event_type"], result["month"], result["processed"])

        marks = []
        with ThreadPoolExecutor(max_workers=service.parallel) as pool, \
                ThreadPoolExecutor(max_workers=1) as marker:
            try:
                for group in server_side.record_groups(service.client, self.source,
                                                       after, service.batch_size):
                    if submitted >= limit:
                        result["interrupted"] = True
                        break
                    health = service.check_health_conditions()
                    if not health["is_healthy"]:
                        result.update(interrupted=True, health_issue=health["reason"])
                        break
                    pending.append((group, pool.submit(self.copy, {"terms": {"recid": group}},
                                                       group)))
                    submitted += 1
                    if len(pending) >= service.parallel:
                        settle_oldest()
                while pending:
                    settle_oldest()
            finally:  # on error, later groups may finish but the bookmark stays behind
                for _, future in pending:
                    future.cancel()
        for future in marks:
            future.result()  # a failed bookmark write fails the month
