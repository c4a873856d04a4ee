"""What serve sets up for the process before it listens."""

from __future__ import annotations

import sys

from cost_monitor import service
from cost_monitor.config import load_config


def test_serve_hands_the_gil_over_within_a_millisecond(tmp_path, monkeypatch):
    """The writer thread waits for the GIL after every database round trip; behind an event
    loop busy with the next batches, Python's default 5 ms switch interval made a COPY of 800
    rows take 28-36 ms instead of 20-24 ms."""
    path = tmp_path / "config.yml"
    path.write_text("{}\n")
    config = load_config(path, environ={})
    config.database.dsn = "host=127.0.0.1 port=1 dbname=none user=none"
    config.spool.directory = str(tmp_path / "spool")
    config.auth.disabled = True
    seen = []
    monkeypatch.setattr(
        service.web, "run_app", lambda *args, **kwargs: seen.append(sys.getswitchinterval())
    )
    before = sys.getswitchinterval()
    try:
        service.serve(config, run_collectors=False)
    finally:
        sys.setswitchinterval(before)
    assert seen == [service.GIL_SWITCH_INTERVAL_SECONDS]
    assert service.GIL_SWITCH_INTERVAL_SECONDS <= 0.001
