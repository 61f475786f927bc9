# Part of invenio-stats-dashboard (MIT License).
"""Dashboard API resources: data series, queries, permissions and serializers."""
