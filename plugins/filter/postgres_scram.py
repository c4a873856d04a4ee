# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Ansible convention: DOCUMENTATION, EXAMPLES and RETURN come before the imports.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
name: postgres_scram
short_description: The SCRAM-SHA-256 verifier PostgreSQL stores for a password
version_added: 0.1.0
description:
  - Computes, on the controller, the C(SCRAM-SHA-256$...) verifier of a password with a random
    salt. C(ALTER ROLE ... PASSWORD '<verifier>') then sets the password without the
    plaintext reaching the server or its log.
options:
  _input:
    description: The password.
    type: str
    required: true
author:
  - aicost.monitoring maintainers (@aicost)
"""

EXAMPLES = r"""
- name: Set the superuser's password over the local socket, as a verifier
  ansible.builtin.command:
    cmd: docker compose exec -T timescaledb psql -U postgres -v ON_ERROR_STOP=1
    stdin: ALTER ROLE postgres PASSWORD '{{ new_password | aicost.monitoring.postgres_scram }}'
  no_log: true
"""

RETURN = r"""
_value:
  description: C(SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>), base64 parts.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_scram import (
    scram_verifier,
)


def postgres_scram(password):
    if not isinstance(password, str) or not password:
        raise AnsibleFilterError("postgres_scram needs a non-empty password string")
    return scram_verifier(password)


class FilterModule:
    def filters(self):
        return {"postgres_scram": postgres_scram}
