# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Ansible convention: DOCUMENTATION, EXAMPLES and RETURN come before the imports.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
name: tree_digest
short_description: A digest of the files under directories on the controller
version_added: 0.1.0
description:
  - Walks each directory (or reads each file) on the controller and returns the SHA-256 of
    every file's path, relative to the term, and content, in a stable order. Symbolic links
    are followed, C(__pycache__) directories and C(*.pyc) files are skipped.
  - Use it to tag an image built from a source tree, so that it is rebuilt only when the
    tree changes.
options:
  _terms:
    description: Directories or files on the controller.
    required: true
    type: list
    elements: path
author:
  - aicost.monitoring maintainers (@aicost)
"""

EXAMPLES = r"""
- name: Tag the app image with the digest of its sources
  ansible.builtin.set_fact:
    app_tag: "{{ lookup('aicost.monitoring.tree_digest', role_path ~ '/../../app/src') }}"
"""

RETURN = r"""
_raw:
  description: One hex SHA-256 digest covering all the terms.
  type: list
  elements: str
"""

import hashlib
import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

SKIPPED_DIRECTORIES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


def tree_files(root: str) -> list[tuple[str, str]]:
    """(path relative to root, absolute path) of every file, sorted."""
    if os.path.isfile(root):
        return [(os.path.basename(root), root)]
    found = []
    for directory, subdirectories, names in os.walk(root, followlinks=True):
        subdirectories[:] = sorted(d for d in subdirectories if d not in SKIPPED_DIRECTORIES)
        for name in names:
            if not name.endswith(".pyc"):
                path = os.path.join(directory, name)
                found.append((os.path.relpath(path, root), path))
    return sorted(found)


def tree_digest(roots: list[str]) -> str:
    digest = hashlib.sha256()
    for root in roots:
        if not os.path.exists(root):
            raise AnsibleLookupError("tree_digest: {0} does not exist".format(root))
        for relative, path in tree_files(root):
            digest.update(relative.encode("utf-8") + b"\0")
            with open(path, "rb") as handle:
                digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [tree_digest([str(term) for term in terms])]
