"""Aggregators of community statistics."""
