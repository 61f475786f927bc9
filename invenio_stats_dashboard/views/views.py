# Part of invenio-stats-dashboard (MIT License).
"""Blueprints for the dashboard pages (UI app) and data endpoint (API app).

The page routes (``STATS_DASHBOARD_ROUTES``) and the ``/stats-dashboard`` POST
endpoint arrive with the dashboard and API work; until then the blueprints are
registered empty so the entry points resolve and menus are not registered.
"""

from flask import Blueprint


def create_blueprint(app):
    """Blueprint ``invenio_stats_dashboard`` for the dashboard pages."""
    return Blueprint("invenio_stats_dashboard", __name__)


def create_api_blueprint(app):
    """Blueprint ``invenio_stats_dashboard_api`` for the dashboard data endpoint."""
    return Blueprint("invenio_stats_dashboard_api", __name__)
