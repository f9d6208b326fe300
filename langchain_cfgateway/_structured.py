"""``with_structured_output`` for :class:`ChatCloudflare`: function calling, JSON schema, JSON mode."""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from cfgateway.costs.catalog import ModelInfo

Method = Literal["function_calling", "json_schema", "json_mode"]
METHODS: tuple[str, ...] = ("function_calling", "json_schema", "json_mode")


def _is_pydantic_class(obj: Any) -> bool:
    return isinstance(obj, type) and is_basemodel_subclass(obj)


def working_methods(info: ModelInfo | None) -> list[str]:
    """The methods the catalog says ``info``'s model supports (all three when it is not in the catalog)."""
    if info is None:
        return list(METHODS)
    out = ["function_calling"] if info.function_calling else []
    if info.json_mode:
        out += ["json_schema", "json_mode"]
    return out


def check_method(method: str, model: str, info: ModelInfo | None) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    ok = working_methods(info)
    if method not in ok:
        hint = f"use method={ok[0]!r}" if ok else "this model has neither tool calling nor a JSON mode"
        raise ValueError(
            f"{model} does not support structured output with method={method!r} (catalog); "
            f"methods that work: {', '.join(ok) or 'none'} — {hint}"
        )


def _schema_name(schema: Any) -> str:
    return str(convert_to_openai_tool(schema)["function"]["name"])


def _response_format(schema: Any, strict: bool | None) -> dict[str, Any]:
    json_schema = convert_to_json_schema(schema)
    wrapper: dict[str, Any] = {"name": json_schema.get("title") or _schema_name(schema), "schema": json_schema}
    if strict is not None:
        wrapper["strict"] = strict
    return {"type": "json_schema", "json_schema": wrapper}


def structured_runnable(
    llm: BaseChatModel,
    schema: Any,
    *,
    method: str,
    include_raw: bool,
    strict: bool | None,
) -> Runnable[Any, Any]:
    """The chain ``llm`` (bound to force the schema) | parser, optionally keeping the raw message."""
    from langchain_core.output_parsers import JsonOutputKeyToolsParser, JsonOutputParser, PydanticToolsParser
    from langchain_core.output_parsers.pydantic import PydanticOutputParser

    if schema is None:
        raise ValueError("with_structured_output needs a schema (pydantic class, TypedDict or JSON schema dict)")
    pydantic_cls = _is_pydantic_class(schema)
    parser: Runnable[Any, Any]
    if method == "function_calling":
        name = _schema_name(schema)
        bound = llm.bind_tools(
            [schema], tool_choice=name, strict=strict,
            ls_structured_output_format={"kwargs": {"method": method, "strict": strict}, "schema": schema},
        )
        if pydantic_cls:
            parser = PydanticToolsParser(tools=[schema], first_tool_only=True)
        else:
            parser = JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
    else:
        rf = {"type": "json_object"} if method == "json_mode" else _response_format(schema, strict)
        bound = llm.bind(
            response_format=rf,
            ls_structured_output_format={"kwargs": {"method": method, "strict": strict}, "schema": schema},
        )
        parser = PydanticOutputParser(pydantic_object=schema) if pydantic_cls else JsonOutputParser()
    if not include_raw:
        return bound | parser
    parse = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
    no_parse = RunnablePassthrough.assign(parsed=lambda _: None)
    with_fallback = parse.with_fallbacks([no_parse], exception_key="parsing_error")
    return RunnableMap(raw=bound) | with_fallback


__all__ = ["METHODS", "check_method", "structured_runnable", "working_methods"]
