"""The emulator's answer logic without a server: tokens, tools, schema filling, JSON mode, stop/max_tokens,
embeddings and request parsing."""

from __future__ import annotations

import math
from typing import Any

import pytest

from cfgateway.emulator.answers import ChatInput, ToolDef, answer, choose_tools, count_tokens, split_pieces
from cfgateway.emulator.embeddings import embed_text
from cfgateway.emulator.inputs import BadInput, from_anthropic, from_openai, from_workers, parse_response_format
from cfgateway.emulator.schema_fill import fill_schema

WEATHER = ToolDef("get_weather", "Weather for a city", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
MAGIC = ToolDef("magic_function", "Applies a magic function", {
    "type": "object", "properties": {"input": {"type": "integer"}}, "required": ["input"]})
ADDER = ToolDef("my_adder_tool", "Adds a and b", {
    "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]})


def user(text: str, **kw: Any) -> ChatInput:
    return ChatInput(messages=[("user", text)], **kw)


def conforms(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None) -> bool:
    """A small JSON-schema check (types, required, enum) for the shapes used here."""
    root = root or schema
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return conforms(value, root["$defs"][name], root)
    if "enum" in schema:
        return value in schema["enum"]
    t = schema.get("type", "object")
    checks: dict[str, Any] = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list,
              "object": dict}
    if not isinstance(value, checks[t]) or (t in ("integer", "number") and isinstance(value, bool)):
        return False
    if t == "object":
        props = schema.get("properties", {})
        if not set(schema.get("required", [])) <= set(value) or not set(value) <= set(props):
            return False
        return all(conforms(v, props[k], root) for k, v in value.items())
    if t == "array":
        return all(conforms(v, schema.get("items", {}), root) for v in value)
    return True


def test_token_count_splits_words_and_punctuation() -> None:
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("") == 0
    # 3 per message plus content tokens
    assert answer(user("Hello there")).prompt_tokens == 5


@pytest.mark.parametrize(
    ("tool", "prompt", "args"),
    [
        (WEATHER, "What is the weather in Paris?", {"city": "Paris"}),
        (WEATHER, "weather for city: Lyon please", {"city": "Lyon"}),
        (MAGIC, "What is the value of magic_function(3)? Use the tool.", {"input": 3}),
        (ADDER, "Use my_adder_tool: What is 3 + 4", {"a": 3, "b": 4}),
    ],
)
def test_tool_arguments_follow_the_schema(tool: ToolDef, prompt: str, args: dict[str, Any]) -> None:
    ans = answer(user(prompt, tools=[tool], tool_choice="auto"))
    assert ans.tool_calls == [(tool.name, args)]
    assert ans.finish_reason == "tool_calls" and ans.text == ""


def test_tool_choice_rules() -> None:
    tools = [MAGIC, WEATHER]
    assert choose_tools(user("Hello!", tools=tools)) == []  # auto, nothing mentioned
    assert choose_tools(user("Hello!", tools=tools, tool_choice="required")) == [MAGIC]  # forced: first
    assert choose_tools(user("Hello!", tools=tools, tool_choice="get_weather")) == [WEATHER]  # named
    assert choose_tools(user("weather in Rome", tools=tools, tool_choice="none")) == []
    assert choose_tools(user("weather in Rome", tools=tools)) == [WEATHER]  # best match
    assert choose_tools(user("please use a tool", tools=tools)) == [MAGIC]  # "tool" mentioned
    both = choose_tools(user("call get_weather and magic_function", tools=tools))
    assert [t.name for t in both] == ["get_weather", "magic_function"]


def test_after_a_tool_result_the_answer_is_text() -> None:
    inp = ChatInput(
        messages=[("user", "weather in Paris?"), ("assistant", '[{"name": "get_weather"}]'), ("tool", "It's sunny.")],
        tools=[WEATHER],
    )
    ans = answer(inp)
    assert ans.tool_calls == [] and ans.text == "The tool returned: It's sunny."


def test_schema_fill_handles_enum_bool_arrays_nested_refs_and_unicode() -> None:
    schema = {
        "type": "object",
        "properties": {
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "verbose": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "owner": {"$ref": "#/$defs/Person"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "required": ["unit", "verbose", "tags", "owner"],
        "$defs": {"Person": {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}},
    }
    value = fill_schema(schema, "Report in fahrenheit, verbose false, for someone aged 42")
    assert value == {"unit": "fahrenheit", "verbose": False, "tags": [value["tags"][0]], "owner": {"age": 42}}
    assert conforms(value, schema)
    customer = {"type": "object", "properties": {"customer_name": {"type": "string"}}, "required": ["customer_name"]}
    assert fill_schema(customer, "Create a customer named '你好啊集团' (Hello Group)") == {"customer_name": "你好啊集团"}
    assert fill_schema({"type": "object", "properties": {}}, "anything") == {}


def test_json_schema_mode_conforms_and_json_object_uses_quoted_keys() -> None:
    joke = {
        "type": "object",
        "properties": {"setup": {"type": "string"}, "punchline": {"type": "string"}, "rating": {"type": "integer"}},
        "required": ["setup", "punchline", "rating"],
    }
    ans = answer(user("Tell me a joke about cats, rating 7", json_mode="schema", schema=joke))
    assert conforms(ans.parsed, joke) and ans.parsed["rating"] == 7
    keys = answer(user("Return JSON with 'setup' and 'punchline' keys.", json_mode="object")).parsed
    assert set(keys) == {"setup", "punchline"}
    assert answer(user("Say hi in JSON", json_mode="object")).parsed == {"answer": "You said: Say hi in JSON"}


def test_stop_and_max_tokens() -> None:
    ans = answer(user("alpha beta gamma delta", stop=["gamma"]))
    assert ans.text == "You said: alpha beta " and ans.finish_reason == "stop" and ans.stop_sequence == "gamma"
    cut = answer(user("alpha beta gamma delta", max_tokens=3))
    assert cut.text == "You said:" and cut.finish_reason == "length" and cut.completion_tokens == 3
    assert answer(user("alpha", max_tokens=100)).finish_reason == "stop"


def test_reply_is_never_empty_and_pieces_rejoin() -> None:
    assert answer(user("   ")).text
    text = "You said:  two  spaces and trailing "
    assert "".join(split_pieces(text)) == text


def _dot(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_are_unit_deterministic_and_similar_for_shared_words() -> None:
    a = embed_text("the cat sat on the mat", 384, "m")
    assert math.isclose(math.sqrt(_dot(a, a)), 1.0, rel_tol=1e-9)
    assert a == embed_text("the cat sat on the mat", 384, "m")
    assert _dot(a, embed_text("a cat on a mat", 384, "m")) > _dot(a, embed_text("quantum chromodynamics", 384, "m"))
    assert embed_text("hello", 384, "bge:cls") != embed_text("hello", 384, "bge:mean")
    assert len(embed_text("?!", 64, "m")) == 64


def test_request_parsing_variants() -> None:
    mode, schema = parse_response_format({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}})
    assert mode == "schema" and schema == {"type": "object"}
    assert parse_response_format({"type": "json_schema", "json_schema": {"type": "object"}})[1] == {"type": "object"}
    inp = from_openai({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                       "tool_choice": {"type": "function", "function": {"name": "f"}}, "stop": "x"})
    assert inp.messages == [("user", "hi")] and inp.tool_choice == "f" and inp.stop == ["x"]
    assert from_workers({"prompt": "hey"}, legacy=True).max_tokens == 256  # documented default
    with pytest.raises(BadInput, match="prompt"):
        from_workers({"text": "x"}, legacy=True)
    anth = from_anthropic({
        "max_tokens": 10,
        "system": "Be brief.",
        "tool_choice": {"type": "any"},
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "w", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "sunny"}]},
        ],
    })
    assert anth.messages[0] == ("system", "Be brief.") and anth.messages[-1] == ("tool", "sunny")
    assert anth.tool_choice == "required"
    with pytest.raises(BadInput, match="max_tokens"):
        from_anthropic({"messages": []})
