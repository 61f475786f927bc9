"""Community custom fields of invenio-stats-dashboard (``stats`` namespace)."""
