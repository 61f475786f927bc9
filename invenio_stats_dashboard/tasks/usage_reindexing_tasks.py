# Part of invenio-stats-dashboard (MIT License).
"""Usage-event migration as Celery tasks (``usage-events migrate --async``)."""

from celery import shared_task

from ..proxies import current_event_reindexing_service


@shared_task(ignore_result=False)
def reindex_usage_events_with_metadata(event_types=None, max_batches=None, batch_size=None,
                                       max_memory_percent=None, delete_old_indices=False,
                                       fresh_start=False, months=None):
    """Run the migration; returns its report (a JSON-able dict)."""
    service = current_event_reindexing_service._get_current_object()
    if batch_size:
        service.batch_size = min(int(batch_size), 10_000)
    if max_memory_percent:
        service.max_memory_percent = float(max_memory_percent)
    return service.reindex_events(event_types=event_types, max_batches=max_batches,
                                  delete_old_indices=delete_old_indices,
                                  fresh_start=fresh_start, month_filter=months or None)


@shared_task(ignore_result=False)
def get_reindexing_progress():
    """Per type and month: source, migrated and remaining counts, and health."""
    service = current_event_reindexing_service._get_current_object()
    return {"counts": service.count_total_events(), "health": service.check_health_conditions()}
