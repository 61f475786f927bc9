# Part of invenio-stats-dashboard (MIT License).
"""Aggregation tasks (the hourly community aggregation beat entry).

The tasks arrive with their issues; the module exists so the entry point
resolves.
"""
