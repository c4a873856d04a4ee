# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL SCRAM-SHA-256 password verifiers (RFC 5802 / RFC 7677), computed client-side.

A verifier is what PostgreSQL stores in pg_authid: ``SCRAM-SHA-256$<iterations>:<salt>$
<StoredKey>:<ServerKey>``. Sending one in ``ALTER ROLE ... PASSWORD`` sets the password
without the plaintext ever reaching the server (or its log, when a statement fails).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

PREFIX = "SCRAM-SHA-256$"
ITERATIONS = 4096  # PostgreSQL's default scram_iterations
SALT_BYTES = 16


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    # PostgreSQL applies SASLprep first; for ASCII passwords (what the role generates) it is
    # the identity, and libpq falls back to the raw bytes where SASLprep fails.
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return stored_key, server_key


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The verifier PostgreSQL would store for ``password`` (a random salt unless given)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    stored_key, server_key = _keys(password, salt, iterations)
    return "{0}{1}:{2}${3}:{4}".format(
        PREFIX,
        iterations,
        base64.b64encode(salt).decode("ascii"),
        base64.b64encode(stored_key).decode("ascii"),
        base64.b64encode(server_key).decode("ascii"),
    )


def scram_matches(verifier: str | None, password: str) -> bool | None:
    """Check a password against a stored verifier.

    None when the verifier is absent or in another format (md5, plain), so the caller sets the
    password rather than guessing.
    """
    if not verifier or not verifier.startswith(PREFIX):
        return None
    try:
        scheme_parts = verifier.split("$")
        if len(scheme_parts) != 3:
            return None
        iterations, salt = scheme_parts[1].split(":")
        stored_key, server_key = scheme_parts[2].split(":")
        computed_stored, computed_server = _keys(password, base64.b64decode(salt), int(iterations))
    except ValueError:
        return None
    stored_ok = hmac.compare_digest(computed_stored, base64.b64decode(stored_key))
    return stored_ok and hmac.compare_digest(computed_server, base64.b64decode(server_key))
