"""Identifier formats.

Tenant ids have a fixed format (a letter, then 15 base-36 characters) so that no
tenant id is a prefix of another when followed by a delimiter: every key and
prefix we build (`TENANT#{id}#`, `tenants/{id}/`, `tenant_{id}_documents`) ends
in a delimiter, so tenant `acme` can never match `acme-corp`.
"""

from __future__ import annotations

import re
import secrets
import string

_ALPHABET = string.digits + string.ascii_lowercase
TENANT_ID_PATTERN = r"^t[0-9a-z]{15}$"
KEY_ID_PATTERN = r"^k[0-9a-z]{15}$"
DOCUMENT_ID_PATTERN = r"^d[0-9a-z]{15}$"
_DOCUMENT_ID_RE = re.compile(DOCUMENT_ID_PATTERN)
_TENANT_ID_RE = re.compile(TENANT_ID_PATTERN)
_KEY_ID_RE = re.compile(KEY_ID_PATTERN)


def _random_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(15))


def new_tenant_id() -> str:
    return _random_id("t")


def new_key_id() -> str:
    return _random_id("k")


def new_document_id() -> str:
    return _random_id("d")


def is_document_id(value: str) -> bool:
    return bool(_DOCUMENT_ID_RE.fullmatch(value))


def is_tenant_id(value: str) -> bool:
    return bool(_TENANT_ID_RE.fullmatch(value))


def is_key_id(value: str) -> bool:
    return bool(_KEY_ID_RE.fullmatch(value))
