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


def test_a_stage_killed_during_a_rerun_is_not_taken_for_up_to_date(tmp_path):
    calls: list[str] = []
    run_stages(_ctx(tmp_path), _stages(calls))
    with pytest.raises(RuntimeError):
        run_stages(_ctx(tmp_path), _stages(calls, fail_at="second"), from_stage="second")
    calls.clear()
    run_stages(_ctx(tmp_path), _stages(calls))
    assert calls == ["second", "third"]


def test_from_stage_moves_its_checkpoints_aside(tmp_path):
    calls: list[str] = []
    stages = _stages(calls)
    stages[1].state = lambda ctx: [ctx.path("second", "checkpoints")]
    run_stages(_ctx(tmp_path), stages)
    (tmp_path / "second" / "checkpoints").mkdir(parents=True)
    (tmp_path / "second" / "checkpoints" / "last.ckpt").write_text("finished")
    run_stages(_ctx(tmp_path), stages)  # up to date: nothing moves
    assert (tmp_path / "second" / "checkpoints" / "last.ckpt").exists()
    run_stages(_ctx(tmp_path), stages, from_stage="second")
    assert not (tmp_path / "second" / "checkpoints").exists()
    assert len(list((tmp_path / "second").glob("checkpoints.old-*"))) == 1


def test_an_interruption_names_the_stage_and_its_checkpoint(tmp_path):
    import signal

    from usconvirt.errors import Interrupted

    calls: list[str] = []
    stages = _stages(calls)
    checkpoints = tmp_path / "second" / "checkpoints"
    stages[1].state = lambda ctx: [checkpoints]

    def killed(ctx):
        checkpoints.mkdir(parents=True, exist_ok=True)
        (checkpoints / "last.ckpt").write_text("partial")
        raise Interrupted(signal.SIGTERM)

    stages[1].run = killed
    with pytest.raises(Interrupted) as stop:
        run_stages(_ctx(tmp_path), stages)
    assert stop.value.exit_code == 143
    assert "'second'" in str(stop.value) and "last.ckpt" in str(stop.value)


def test_a_second_run_on_the_same_directory_is_refused_and_a_dead_ones_lock_taken_over(tmp_path):
    import json
    import os
    import socket
    import subprocess
    import sys

    from usconvirt.pipeline import LOCK, run_lock

    with run_lock(tmp_path, echo=lambda s: None):
        with pytest.raises(InputError, match="another usconvirt run holds this run directory"):
            with run_lock(tmp_path, echo=lambda s: None):
                pass
    assert not (tmp_path / LOCK).exists()

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / LOCK).write_text(json.dumps({"pid": int(dead), "host": socket.gethostname(), "since": "x"}))
    notes: list[str] = []
    with run_lock(tmp_path, echo=notes.append):
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    assert notes and "taking over" in notes[0]
