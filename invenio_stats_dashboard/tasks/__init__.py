"""Celery tasks (registered through ``invenio_celery.tasks`` entry points)."""
