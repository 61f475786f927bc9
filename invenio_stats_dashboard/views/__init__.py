"""Dashboard pages and the dashboard data endpoint."""
