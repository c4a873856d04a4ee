"""The longest test files first: `pytest -n 2 --dist loadfile` hands files to the two workers
in collection order, so a long file collected last would run alone at the end."""

from __future__ import annotations

import pytest

LONGEST_FIRST = ("test_swarm_role.py", "test_deploy_command.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within each file stays
