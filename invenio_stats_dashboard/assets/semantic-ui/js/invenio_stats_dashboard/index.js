// Part of invenio-stats-dashboard (MIT License).
// Entry of the dashboard bundle. The React dashboards arrive with the
// dashboard work; the entry exists so the webpack bundle resolves.
export {};
