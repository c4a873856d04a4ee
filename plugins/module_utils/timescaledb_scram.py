# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL SCRAM-SHA-256 password verifiers (RFC 5802 / RFC 7677), computed client-side.

A verifier is what PostgreSQL stores in pg_authid: ``SCRAM-SHA-256$<iterations>:<salt>$
<StoredKey>:<ServerKey>``. Sending one in ``CREATE ROLE``/``ALTER ROLE ... PASSWORD`` sets the
password without the plaintext ever reaching the server (or its log, when a statement fails).

The one implementation for the whole collection: the postgres_scram filter runs on the
controller, where psycopg2 may be missing, and psycopg2's encrypt_password needs an open
connection for SCRAM.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stringprep
import unicodedata

PREFIX = "SCRAM-SHA-256$"
ITERATIONS = 4096  # PostgreSQL's default scram_iterations
SALT_BYTES = 16


def _prohibited(character: str) -> bool:
    return (
        stringprep.in_table_c12(character)
        or stringprep.in_table_c21_c22(character)
        or stringprep.in_table_c3(character)
        or stringprep.in_table_c4(character)
        or stringprep.in_table_c5(character)
        or stringprep.in_table_c6(character)
        or stringprep.in_table_c7(character)
        or stringprep.in_table_c8(character)
        or stringprep.in_table_c9(character)
        or stringprep.in_table_a1(character)  # unassigned in Unicode 3.2
    )


def saslprep(password: str) -> str | None:
    """SASLprep (RFC 4013) as PostgreSQL's pg_saslprep() applies it, or None where it fails.

    Like PostgreSQL, the prohibited and bidirectional checks look at the mapped characters
    before NFKC normalisation, and pure ASCII passes unchanged.
    """
    if password.isascii():
        return password
    mapped = [
        " " if stringprep.in_table_c12(character) else character
        for character in password
        if not stringprep.in_table_b1(character)
    ]
    if not mapped or any(_prohibited(character) for character in mapped):
        return None
    if any(stringprep.in_table_d1(character) for character in mapped) and (
        any(stringprep.in_table_d2(character) for character in mapped)
        or not stringprep.in_table_d1(mapped[0])
        or not stringprep.in_table_d1(mapped[-1])
    ):
        return None
    return unicodedata.normalize("NFKC", "".join(mapped))


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    # The server and libpq hash the SASLprep'd password, or the raw one where SASLprep fails.
    prepared = saslprep(password)
    secret = (password if prepared is None else prepared).encode("utf-8")
    salted = hashlib.pbkdf2_hmac("sha256", secret, salt, iterations)
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
