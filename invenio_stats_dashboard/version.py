"""Version of invenio-stats-dashboard (tracks the upstream interface it follows)."""

__version__ = "0.5.0"
