"""The server's bearer token: read, or generated and written 0600; compared in constant time."""

import hmac
import os
import re
import secrets
from pathlib import Path
from typing import Optional, Tuple

from sc2deploy import atomic
from sc2deploy.errors import UsageError
from sc2deploy.wire import TOKEN_ENV, bearer_token

TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{16,256}")
TOKEN_MODE = 0o600


def server_token(token_file: Optional[Path]) -> Tuple[str, str]:
    """(token, where it came from): the environment variable ``wire.TOKEN_ENV``, else
    ``token_file``; a new one is generated when neither holds one, and written to
    ``token_file`` (0600) when given."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return _checked(token, TOKEN_ENV), f"environment variable {TOKEN_ENV}"
    if token_file is not None and Path(token_file).is_file():
        return _checked(Path(token_file).read_text(encoding="ascii").strip(),
                        str(token_file)), str(token_file)
    token = secrets.token_urlsafe(32)
    if token_file is None:
        return token, "generated (not saved: give --token-file to keep it)"
    atomic.write_bytes(token_file, (token + "\n").encode(), mode=TOKEN_MODE)
    return token, f"generated, written to {token_file} (mode 0600)"


def _checked(token: str, where: str) -> str:
    if not TOKEN.fullmatch(token):
        raise UsageError(f"token from {where} is not usable: expected 16-256 characters of "
                         "A-Z a-z 0-9 . _ ~ + / = -; remove it to have a new one generated")
    return token


def authorized(header: Optional[str], token: str) -> bool:
    """Does an Authorization header carry ``token`` (compared in constant time)?"""
    given = bearer_token(header)
    return given is not None and hmac.compare_digest(given.encode(), token.encode())
