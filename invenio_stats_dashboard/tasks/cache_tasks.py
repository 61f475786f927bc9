# Part of invenio-stats-dashboard (MIT License).
"""Response-cache tasks (the hourly pre-generation beat entry).

The tasks arrive with their issues; the module exists so the entry point
resolves.
"""
