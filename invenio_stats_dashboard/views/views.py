# Part of invenio-stats-dashboard (MIT License).
"""Blueprints for the dashboard pages (UI app) and data endpoint (API app).

The page routes (``STATS_DASHBOARD_ROUTES``) arrive with the dashboard work;
until then the UI blueprint is registered empty so the entry point resolves.
The API blueprint carries the ``/stats-dashboard`` POST endpoint (``api.py``).
"""

from flask import Blueprint


def create_blueprint(app):
    """Blueprint ``invenio_stats_dashboard`` for the dashboard pages."""
    return Blueprint("invenio_stats_dashboard", __name__)


def create_api_blueprint(app):
    """Blueprint ``invenio_stats_dashboard_api`` with ``POST /stats-dashboard`` (views/api.py)."""
    from .api import register

    return register(Blueprint("invenio_stats_dashboard_api", __name__), app)
