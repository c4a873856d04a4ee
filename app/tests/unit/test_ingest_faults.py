"""The ingest path under disk faults and writer failures, database down (every accepted batch
goes to the spool): every request gets an answer, and the writer lives on.

The spool lives on a small tmpfs mounted for the test (the tests run as root, where chmod
would not stop a write: a read-only remount does).
"""

from __future__ import annotations

import contextlib
import subprocess
import time

import requests
from app_helpers import ingest, metric_value, running_app
from cost_monitor.config import load_config
from cost_monitor.sink import Sink

GOOD = {"provider": "openai", "model": "gpt-5-mini", "input_tokens": 1000, "output_tokens": 50}


def config_for(spool_directory):
    config = load_config(None, environ={})
    config.database.dsn = "host=127.0.0.1 port=1 dbname=none user=none"  # nothing listens
    config.database.connect_timeout_seconds = 1
    config.spool.directory = str(spool_directory)
    config.spool.retry_after_seconds = 9
    config.auth.disabled = True
    return config


@contextlib.contextmanager
def small_tmpfs(path, size="64k"):
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def remount(path, options):
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def assert_writer_running(app):
    health = requests.get(app.url + "/healthz", timeout=5)
    assert health.status_code == 200, health.text
    assert health.json()["writer"] == "running"


def test_a_full_disk_answers_503_and_the_writer_lives_on(tmp_path):
    with small_tmpfs(tmp_path / "spool") as spool, running_app(config_for(spool)) as app:
        statuses = []
        for _ in range(100):
            response = ingest(app, [GOOD] * 20)
            statuses.append(response.status_code)
            if response.status_code != 202:
                break
        assert statuses[0] == 202
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "9"
        assert "nothing was stored" in response.json()["error"]
        assert_writer_running(app)
        assert metric_value(app.url, "llm_ingest_spool_write_errors_total") == 1
        assert not list(spool.glob(".*.tmp"))  # the failed write left nothing behind

        remount(spool, "size=1m")  # room again
        assert ingest(app, [GOOD] * 20).status_code == 202
        assert len(app.runtime.sink.spool) == statuses.count(202) + 1


def test_a_read_only_spool_answers_503_until_it_is_writable_again(tmp_path):
    with small_tmpfs(tmp_path / "spool") as spool, running_app(config_for(spool)) as app:
        assert ingest(app, [GOOD]).status_code == 202
        remount(spool, "ro")
        response = ingest(app, [GOOD])
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "9"
        assert_writer_running(app)
        remount(spool, "rw")
        assert ingest(app, [GOOD]).status_code == 202
        assert len(app.runtime.sink.spool) == 2


def test_a_failed_writer_is_restarted_and_its_state_shown(tmp_path, monkeypatch):
    original = Sink._write
    failures = [RuntimeError("injected writer failure")]

    def fail_once(self, batch):
        if failures:
            raise failures.pop()
        return original(self, batch)

    monkeypatch.setattr(Sink, "_write", fail_once)
    with running_app(config_for(tmp_path / "spool")) as app:
        app.runtime.sink.restart_delays = (1.0, 2.0)
        response = ingest(app, [GOOD])
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "9"
        health = requests.get(app.url + "/healthz", timeout=5)
        assert health.status_code == 503
        assert health.json()["writer"] == "restarting"
        assert "injected writer failure" in health.json()["last_error"]
        assert metric_value(app.url, "llm_ingest_writer_up") == 0
        assert ingest(app, [GOOD]).status_code == 503  # no waiting on a writer that is away

        deadline = time.monotonic() + 10
        while requests.get(app.url + "/healthz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the writer was not restarted"
            time.sleep(0.1)
        assert_writer_running(app)
        assert metric_value(app.url, "llm_ingest_writer_up") == 1
        assert metric_value(app.url, "llm_ingest_writer_restarts_total") == 1
        assert ingest(app, [GOOD]).status_code == 202
