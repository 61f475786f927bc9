def test_app_boots(services):
    assert "invenio-stats-dashboard" in services.extensions
