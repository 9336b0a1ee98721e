from __future__ import annotations

import re

from raas.domain import ids
from raas.domain.tenants import Role, generate_secret, hash_secret, role_allows, visible_prefix
from raas.handlers.authorizer import api_wide_arn
from raas.services.auth import looks_like_jwt


def test_ids_have_a_fixed_format_and_are_unique() -> None:
    tenant_ids = {ids.new_tenant_id() for _ in range(1000)}
    assert len(tenant_ids) == 1000
    assert all(ids.is_tenant_id(t) for t in tenant_ids)
    assert all(re.fullmatch(r"t[0-9a-z]{15}", t) for t in tenant_ids)
    assert ids.is_key_id(ids.new_key_id())
    for bad in ("acme", "T0000000000000000", "t00000000000000", "t0000000000000000", "t00000000000000/", "../etc/passwd"):
        assert not ids.is_tenant_id(bad)


def test_keys_are_random_prefixed_and_stored_as_hashes() -> None:
    key = generate_secret()
    assert key.startswith("raas_")
    assert len(key) >= 40
    assert generate_secret(operator=True).startswith("raasop_")
    assert hash_secret(key) == hash_secret(key)
    assert hash_secret(key) != hash_secret(generate_secret())
    assert key not in hash_secret(key)
    assert visible_prefix(key) == key[:12]


def test_role_hierarchy_and_operator_separation() -> None:
    assert role_allows(Role.ADMIN, Role.READER)
    assert role_allows(Role.EDITOR, Role.EDITOR)
    assert not role_allows(Role.READER, Role.EDITOR)
    assert not role_allows(Role.ADMIN, Role.OPERATOR)
    assert not role_allows(Role.OPERATOR, Role.READER)  # the operator is not a tenant member
    assert role_allows(Role.OPERATOR, Role.OPERATOR)


def test_policy_resource_covers_the_whole_stage() -> None:
    arn = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/v1/config"
    assert api_wide_arn(arn) == "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/*"


def test_jwt_detection() -> None:
    assert looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.sig")
    assert not looks_like_jwt(generate_secret())
