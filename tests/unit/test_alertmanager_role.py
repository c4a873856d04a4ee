"""The alertmanager role keeps every receiver's secret in a file of its own."""

from pathlib import Path


def receivers(*names: str) -> list[dict]:
    return [
        {
            "name": name,
            "integrations": [{"type": "webhook", "secret": f"https://hooks.example/{name}"}],
        }
        for name in names
    ]


def test_receivers_whose_names_differ_only_in_unsafe_characters_keep_their_own_secret(
    run_role_tasks, tmp_path: Path
) -> None:
    names = ["team a", "team_a", "team/a", "team-a"]
    result = run_role_tasks(
        "alertmanager",
        "secrets",
        {"stack_dir": str(tmp_path), "alertmanager_receivers": receivers(*names)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    written = sorted(f.read_text() for f in (tmp_path / "secrets").iterdir())
    assert written == sorted(f"https://hooks.example/{name}" for name in names)


def test_the_secret_file_of_a_plainly_named_receiver_keeps_its_name(
    run_role_tasks, tmp_path: Path
) -> None:
    result = run_role_tasks(
        "alertmanager",
        "secrets",
        {"stack_dir": str(tmp_path), "alertmanager_receivers": receivers("ops.pager-1")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [f.name for f in (tmp_path / "secrets").iterdir()] == ["alertmanager-ops.pager-1-1"]


def test_the_preflight_refuses_two_receivers_of_one_name(run_role_tasks, tmp_path: Path) -> None:
    result = run_role_tasks(
        "alertmanager",
        "preflight",
        {
            "stack_dir": str(tmp_path),
            "alertmanager_route": {"receiver": "team"},
            "alertmanager_receivers": receivers("team", "team"),
        },
    )
    assert result.returncode != 0
    assert "more than one receiver is named team." in result.stdout, result.stdout
