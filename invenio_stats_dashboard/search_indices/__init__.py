"""Index templates and event builders of invenio-stats-dashboard."""
