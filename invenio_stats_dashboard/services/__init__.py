"""Services of invenio-stats-dashboard (import from the submodules)."""
