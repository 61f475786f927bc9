# Part of invenio-stats-dashboard (MIT License).
"""Usage-event migration tasks (usage-events migrate --async).

The tasks arrive with their issues; the module exists so the entry point
resolves.
"""
