# Part of invenio-stats-dashboard (MIT License).
"""Read side: stats queries, the data-series transformer, permissions, serializers."""
