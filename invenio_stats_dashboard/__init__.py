# Part of invenio-stats-dashboard (MIT License).
"""Global and per-community statistics dashboards for InvenioRDM."""

from .version import __version__

__all__ = ("__version__",)
