"""Checks API answers against the OpenAPI document (openapi-schema-validator, installed with
openapi-spec-validator).

Validation is strict about object fields: every object schema that lists `properties` and
does not say otherwise is treated as closed, so a field an endpoint returns without the
document naming it fails the test (the document itself stays open for additions)."""

from __future__ import annotations

import copy
import json
from typing import Any

from openapi_schema_validator import OAS30Validator


def document(client, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get("/api/openapi", headers=headers)
    assert response.status_code == 200
    return json.loads(response.get_data())


def _closed(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _closed(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_closed(v) for v in node]
    return node


def _merge_all_of(schema: Any, components: dict[str, Any]) -> Any:
    """`allOf` of object parts → one object (closed objects cannot be combined otherwise;
    `{"nullable": true, "allOf": [$ref]}`, the OpenAPI 3.0 way to say "this object or null",
    becomes the nullable object itself)."""
    if isinstance(schema, list):
        return [_merge_all_of(v, components) for v in schema]
    if not isinstance(schema, dict):
        return schema
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        if schema.get("nullable"):
            merged["nullable"] = True
        for part in schema["allOf"]:
            while "$ref" in part:
                part = components[part["$ref"].rsplit("/", 1)[1]]
            part = _merge_all_of(part, components)
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        if not merged["required"]:
            del merged["required"]
        return merged
    return {k: _merge_all_of(v, components) for k, v in schema.items()}


def response_schema(doc: dict, method: str, path: str, status: int, media: str) -> dict:
    operation = doc["paths"][path][method]
    assert str(status) in operation["responses"], f"{method} {path}: {status} not documented"
    response = operation["responses"][str(status)]
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response["content"][media]["schema"]


def check(doc: dict, method: str, path: str, response, media: str = "application/json") -> Any:
    """The response's status is documented for the operation and its body matches."""
    body = response.get_json()
    schema = copy.deepcopy(response_schema(doc, method, path, response.status_code, media))
    components = copy.deepcopy(doc["components"]["schemas"])
    components = {k: _merge_all_of(v, components) for k, v in components.items()}
    schema = _closed(_merge_all_of(schema, components))
    root = {**schema, "components": {"schemas": _closed(components)}}
    errors = sorted(OAS30Validator(root).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{method} {path} {response.status_code}: " + "; ".join(
        f"{list(e.path)}: {e.message[:200]}" for e in errors[:5]
    )
    return body
