"""The Grafana dashboards of the collection, as Python.

One module per dashboard builds its JSON from the helpers in ``grafana`` and the shared query
pieces in ``queries``; ``generate`` writes roles/grafana/files/dashboards/<uid>.json.
Run ``.venv/bin/python -m tools.dashboards`` from the repository root (docs/dashboards.md).
"""
