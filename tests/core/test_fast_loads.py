"""wire.common.fast_loads: orjson when installed, the stdlib otherwise, same values either way."""

from __future__ import annotations

import json
import math

import pytest

from cfgateway.wire import common

BODY = json.dumps(
    {"result": {"shape": [2, 3], "data": [[0.1, -0.25, 1e-300], [5e-324, 1.0000000000000002, -0.0]]}, "x": "é"}
).encode()


def test_orjson_is_used_when_installed() -> None:
    import orjson  # a dev dependency (cfgateway[fast]): the fast path must be covered


    assert common._orjson_loads() is orjson.loads
    assert common.fast_loads(BODY) == json.loads(BODY)


def test_same_values_with_and_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = common.fast_loads(BODY)
    monkeypatch.setattr(common, "_orjson_loads", lambda: None)
    slow = common.fast_loads(BODY)
    assert fast == slow
    assert [math.copysign(1, v) for v in fast["result"]["data"][1]] == [1, 1, -1]


@pytest.mark.parametrize("use_orjson", [True, False])
def test_what_only_the_stdlib_accepts_still_parses(monkeypatch: pytest.MonkeyPatch, use_orjson: bool) -> None:
    if not use_orjson:
        monkeypatch.setattr(common, "_orjson_loads", lambda: None)
    assert math.isnan(common.fast_loads(b'{"v": NaN}')["v"])
    assert common.fast_loads(b"[1e400]") == [math.inf]
    assert common.fast_loads(b'"\\ud800"') == "\ud800"


@pytest.mark.parametrize("use_orjson", [True, False])
def test_invalid_json_raises_value_error(monkeypatch: pytest.MonkeyPatch, use_orjson: bool) -> None:
    if not use_orjson:
        monkeypatch.setattr(common, "_orjson_loads", lambda: None)
    with pytest.raises(ValueError):
        common.fast_loads(b'{"result": {"data": [[0.1,')
