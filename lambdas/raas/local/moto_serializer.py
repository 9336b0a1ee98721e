"""moto's DynamoDB responses written straight to JSON when they are plain data (part of raas.local.moto_patches).

moto 5.2.5 serializes every response through its generic, model-driven serializer
(`moto/core/serialize.py`, `ResponseSerializer._serialize_result`): for each member of each structure of the
output shape it builds an `AttributePickerContext` and tries up to a dozen attribute aliases (explicit, model,
shape-prefix, class-prefix, shape-name, each also through `botocore.xform_name`) to find the value in the
result object, then converts the value by its shape. That is right for services whose results are model
objects (`DBInstance.identifier` for `DBInstanceIdentifier`); DynamoDB's handlers return plain dicts keyed by
the output shape's own member names, so every alias but the first misses. Measured with cProfile over the
local ingest path (300 SciFact abstracts, a trivial embedder), this serialization was about a sixth of the
platform's CPU, more than the backend's own work for a GetItem.

`serialize_result` below writes the same JSON as moto's serializer for such results, walking the same shape
in the same order, and hands anything else back to moto: the first thing it does not recognise (a key that is
not a member name, which moto might reach through an alias; a timestamp; an unexpected Python type;
a serialization name; a response transformer in force) makes it return None, and moto's own serializer runs.
So the output is moto's byte for byte, which tests/integration/test_moto_serializer.py checks on every
DynamoDB response of a workload that uses every attribute type and every operation raas calls, with
`verify()` (the two serializers side by side). Errors and event streams never reach it.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

_SERVICE = "dynamodb"
_verify = False


class _NotPlain(Exception):
    """The value needs moto's own serializer (aliases, timestamps, conversions this module does not make)."""


def verify(enabled: bool = True) -> None:
    """Serializes every response both ways and raises AssertionError on any difference (tests only)."""
    global _verify
    _verify = enabled


def serialize_result(serializer: Any, result: Any) -> str | None:
    """The JSON body moto's `serializer` would write for `result`, or None when only moto's serializer knows."""
    if serializer.service_model.service_name != _SERVICE or serializer.pretty_print:
        return None
    if getattr(serializer._value_picker, "response_transformers", None):
        return None  # moto rewrites some values on their way out; leave those to it
    shape = serializer.operation_model.output_shape
    if shape is None or not isinstance(result, dict):
        return None
    try:
        return json.dumps(_structure(result, shape))
    except _NotPlain:
        return None


def _plain(value: Any, shape: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return _structure(value, shape)
    if kind == "string":
        if type(value) is not str:  # moto's serializer turns Enums and other objects into strings
            raise _NotPlain
        return value
    if kind == "list":
        if type(value) is not list:
            raise _NotPlain
        member = shape.member
        if member.serialization.get("name"):
            raise _NotPlain
        return [_plain(item, member) for item in value]
    if kind == "map":
        if type(value) is not dict or shape.value.serialization.get("name"):
            raise _NotPlain
        return {_key(key): _plain(item, shape.value) for key, item in value.items()}
    if kind == "boolean":
        if type(value) is not bool:
            raise _NotPlain
        return value
    if kind in ("integer", "long"):
        if type(value) is not int:
            raise _NotPlain
        return value
    if kind in ("float", "double"):
        if type(value) not in (int, float):
            raise _NotPlain
        return float(value)
    if kind == "blob":  # as moto's `_base64`: text is encoded as UTF-8 first
        if type(value) is str:
            value = value.encode("utf-8")
        if type(value) is not bytes:
            raise _NotPlain
        return base64.b64encode(value).strip().decode("utf-8")
    raise _NotPlain  # timestamps and anything else


def _key(key: Any) -> str:
    if type(key) is not str:
        raise _NotPlain
    return key


def _structure(value: Any, shape: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise _NotPlain
    if shape.is_document_type:
        raise _NotPlain
    members = shape.members
    if not members.keys() >= value.keys():
        raise _NotPlain  # a key moto might map to a member through one of its aliases
    out: dict[str, Any] = {}
    for name, member in members.items():  # moto writes members in the shape's order
        if name not in value:
            continue
        item = value[name]
        if item is None:
            continue  # moto leaves a member out when its value is None
        if member.serialization.get("name"):
            raise _NotPlain
        out[name] = _plain(item, member)
    return out


def install() -> None:
    """Routes DynamoDB results through `serialize_result` first (moto's JSON serializer otherwise).
    `RAAS_LOCAL_VERIFY_MOTO_SERIALIZER=1` turns `verify()` on for a whole run (the test suite, say)."""
    from moto.core.serialize import BaseJSONSerializer

    if os.environ.get("RAAS_LOCAL_VERIFY_MOTO_SERIALIZER") == "1":
        verify()

    if getattr(BaseJSONSerializer, "_raas_fast_dynamodb", False):
        return
    moto_serialize_result = BaseJSONSerializer._serialize_result

    def _serialize_result(self: Any, resp: Any, result: Any) -> Any:
        body = serialize_result(self, result)
        if body is None:
            return moto_serialize_result(self, resp, result)
        if _verify:
            fresh: Any = dict(resp, headers=dict(resp["headers"]))  # moto's own, written beside ours
            expected = moto_serialize_result(self, fresh, result)["body"]
            if body != expected:
                raise AssertionError(f"{self.operation_name}: fast {body!r} != moto {expected!r}")
        resp["body"] = body
        resp["headers"]["Content-Type"] = self._get_protocol_specific_content_type()
        return resp

    BaseJSONSerializer._serialize_result = _serialize_result  # type: ignore[method-assign]
    BaseJSONSerializer._raas_fast_dynamodb = True  # type: ignore[attr-defined]
