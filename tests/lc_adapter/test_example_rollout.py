"""examples/rollout.py against the emulator: shadows at 10 %, the report, an automatic advance to 50 %, and
an automatic rollback once the emulator fails the candidate (main() and as a script)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cfgateway.emulator.config import Fault

ROOT = Path(__file__).resolve().parents[2]


def load() -> Any:
    spec = importlib.util.spec_from_file_location("lc_example_rollout", ROOT / "examples" / "rollout.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rollout_example(emu: Any, conn: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mod = load()
    broke: list[bool] = []

    def break_candidate() -> None:
        broke.append(True)
        emu.state.add_fault(Fault(path="*llama-3.3-70b*", kind="error", status=500))

    out = mod.main(ledger_url=f"sqlite:///{tmp_path / 'costs.db'}", break_candidate=break_candidate,
                   **conn(gateway=True))
    assert broke == [True] and out["stages"] == [10, 50, 0]
    assert [e.fields["action"] for e in out["events"]] == ["advance", "rollback"]
    assert "error rate" in out["events"][1].fields["reason"]
    first, second = out["report"].stages[:2]
    assert first.percent == 10 and first.samples >= mod.GATES.min_samples and first.mean_similarity == 1.0
    assert second.percent == 50 and second.errors > 0
    led = out["ledger"]
    records = led.records()
    shadows = [r for r in records if r.shadow_pair]
    assert shadows and all(r.baseline == mod.BASELINE and r.model == mod.CANDIDATE for r in shadows)
    assert any(r.error == "ServerError" for r in shadows) and any(r.similarity == 1.0 for r in shadows)
    # step 1's pairs: every call of the sampled tenth of the users OpenAI answered, none of the others
    first_pairs = [r for r in shadows if r.ts < second.since]
    answered = {r.call_id: r for r in records if r.ok and r.model == mod.BASELINE and r.ts < second.since}
    sampled = [c for c, r in answered.items() if mod.SHADOW.sampled(c, r.user)]
    assert len(first_pairs) == first.samples == len(sampled) >= mod.GATES.min_samples
    assert {r.call_id for r in first_pairs} == set(sampled)
    assert all(r.baseline_latency_s == answered[r.call_id].latency_s for r in first_pairs)
    # the embeddings that compared them are booked too (shadow spend), apart from the pairs
    judged = [r for r in records if r.shadow and not r.shadow_pair]
    assert judged and all(r.model == mod.JUDGE and r.operation == "embed" and r.cost for r in judged)
    assert {r.call_id for r in judged} <= {r.call_id for r in shadows if r.error is None}
    # users on the candidate were still answered: the chain fell back to OpenAI
    assert out["callback"].failed_requests == 0
    text = capsys.readouterr().out
    assert "verdict: advance" in text and "stages served: 10 % -> 50 % -> 0 %" in text


def test_rollout_example_runs_as_a_script_offline(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "rollout.py")], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "offline emulator" in out.stdout and "stages served: 10 % -> 50 % -> 0 %" in out.stdout
