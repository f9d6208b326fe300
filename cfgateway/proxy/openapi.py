"""The OpenAPI 3.1 document of the proxy (``GET /openapi.json``), built from the request models themselves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from cfgateway.proxy.schema import ChatCompletionRequest, EmbeddingRequest
from cfgateway.proxy.schema_responses import ResponsesRequest

_ERROR = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message", "type"],
                             "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                                            "param": {"type": ["string", "null"]},
                                            "code": {"type": ["string", "integer", "null"]}}}},
}
_OBJECT = {"type": "object"}


def _answers(ok: dict[str, Any], streams: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": ok}}
    if streams:
        content["text/event-stream"] = {"schema": {"type": "string"}}
    err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    out: dict[str, Any] = {"200": {"description": "OK", "content": content}}
    for status, text in (("400", "invalid request (param names the field)"), ("401", "missing or invalid key"),
                         ("403", "not allowed"), ("404", "unknown model"), ("413", "body too large"),
                         ("415", "not JSON"), ("429", "rate limit or budget"), ("502", "upstream failure"),
                         ("504", "upstream timeout")):
        out[status] = {"description": text, **err}
    return out


def _post(ref: str, summary: str, streams: bool = False) -> dict[str, Any]:
    return {"post": {"summary": summary, "security": [{"bearer": []}],
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}},
                     "responses": _answers(_OBJECT, streams)}}


def _get(summary: str, params: list[dict[str, Any]] | None = None, secured: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": _answers(_OBJECT)}
    if secured:
        op["security"] = [{"bearer": []}]
    if params:
        op["parameters"] = params
    return {"get": op}


def openapi_document() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = [(ChatCompletionRequest, "validation"),
                                                 (EmbeddingRequest, "validation"), (ResponsesRequest, "validation")]
    _, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas = {**defs.get("$defs", {}), "Error": _ERROR}
    model_param = [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "cfgateway OpenAI-compatible proxy", "version": "1"},
        "paths": {
            "/v1/chat/completions": _post("ChatCompletionRequest", "Chat completions", streams=True),
            "/v1/embeddings": _post("EmbeddingRequest", "Embeddings"),
            "/v1/responses": _post("ResponsesRequest", "Responses API (text and tools)", streams=True),
            "/v1/models": _get("Models and aliases with AutoGen's model_info"),
            "/v1/models/{model}": _get("One model or alias", model_param),
            "/healthz": _get("Liveness", secured=False),
            "/readyz": _get("Readiness: the upstream answers", secured=False),
        },
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


__all__ = ["openapi_document"]
