"""The stage manifest: skip what is up to date, redo what changed, resume after a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from usconvirt.errors import InputError
from usconvirt.pipeline import RunContext, Stage, run_stages


def _stages(calls: list[str], fail_at: str | None = None) -> list[Stage]:
    def writer(name: str, source: str | None):
        def run(ctx: RunContext) -> None:
            if name == fail_at:
                raise RuntimeError("killed")
            calls.append(name)
            text = ctx.path(source).read_text() if source else str(ctx.config["a"]["value"])
            ctx.path(f"{name}.txt").write_text(text + name)
        return run

    def files(*names: str):
        return lambda ctx: [ctx.path(f"{n}.txt") for n in names]

    return [
        Stage("first", writer("first", None), inputs=lambda ctx: [], outputs=files("first"), section="a"),
        Stage("second", writer("second", "first.txt"), inputs=files("first"), outputs=files("second"),
              section="b"),
        Stage("third", writer("third", "second.txt"), inputs=files("second"), outputs=files("third")),
    ]


def _ctx(tmp_path: Path, value: int = 1, b: int = 0) -> RunContext:
    return RunContext(config={"a": {"value": value}, "b": {"x": b}}, out=tmp_path, echo=lambda s: None)


def test_second_run_skips_every_stage(tmp_path):
    calls: list[str] = []
    assert set(run_stages(_ctx(tmp_path), _stages(calls)).values()) == {"done"}
    calls.clear()
    status = run_stages(_ctx(tmp_path), _stages(calls))
    assert calls == [] and set(status.values()) == {"skipped"}


def test_config_change_reruns_that_stage_and_the_ones_after(tmp_path):
    calls: list[str] = []
    run_stages(_ctx(tmp_path), _stages(calls))
    calls.clear()
    status = run_stages(_ctx(tmp_path, b=5), _stages(calls))
    assert calls == ["second", "third"]
    assert status["first"] == "skipped"


def test_resume_after_a_kill_does_not_redo_finished_stages(tmp_path):
    calls: list[str] = []
    with pytest.raises(RuntimeError):
        run_stages(_ctx(tmp_path), _stages(calls, fail_at="third"))
    assert calls == ["first", "second"]
    calls.clear()
    run_stages(_ctx(tmp_path), _stages(calls))
    assert calls == ["third"]


def test_from_stage_redoes_everything_from_there(tmp_path):
    calls: list[str] = []
    run_stages(_ctx(tmp_path), _stages(calls))
    calls.clear()
    run_stages(_ctx(tmp_path), _stages(calls), from_stage="second")
    assert calls == ["second", "third"]


def test_deleted_output_is_rebuilt(tmp_path):
    calls: list[str] = []
    run_stages(_ctx(tmp_path), _stages(calls))
    (tmp_path / "second.txt").unlink()
    calls.clear()
    run_stages(_ctx(tmp_path), _stages(calls))
    assert calls == ["second", "third"]


def test_unknown_from_stage_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="unknown stage 'nope'"):
        run_stages(_ctx(tmp_path), _stages([]), from_stage="nope")
