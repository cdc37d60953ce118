"""The stage manifest: skip what is up to date, redo what changed, resume after a failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from usconvirt.errors import InputError
from usconvirt.pipeline import Stage, run_stages
from usconvirt.run_layout import RunLayout


@dataclass
class A:
    value: int = 1


@dataclass
class B:
    x: int = 0


@dataclass
class Config:
    a: A = field(default_factory=A)
    b: B = field(default_factory=B)


def _stages(calls: list[str], fail_at: str | None = None) -> list[Stage]:
    def writer(name: str, source: str | None):
        def run(config: Config, layout: RunLayout) -> str:
            if name == fail_at:
                raise RuntimeError("killed")
            calls.append(name)
            text = (layout.out / source).read_text() if source else str(config.a.value)
            (layout.out / f"{name}.txt").write_text(text + name)
            return ""
        return run

    def files(*names: str):
        return lambda config, layout: [layout.out / f"{n}.txt" for n in names]

    return [
        Stage("first", writer("first", None), inputs=files(), outputs=files("first"), sections=("a",)),
        Stage("second", writer("second", "first.txt"), inputs=files("first"), outputs=files("second"),
              sections=("b",)),
        Stage("third", writer("third", "second.txt"), inputs=files("second"), outputs=files("third")),
    ]


def _run(tmp_path: Path, stages: list[Stage], value: int = 1, b: int = 0, **options) -> dict[str, str]:
    return run_stages(Config(A(value), B(b)), RunLayout(tmp_path), stages, echo=lambda s: None, **options)


def test_second_run_skips_every_stage(tmp_path):
    calls: list[str] = []
    assert set(_run(tmp_path, _stages(calls)).values()) == {"done"}
    calls.clear()
    status = _run(tmp_path, _stages(calls))
    assert calls == [] and set(status.values()) == {"skipped"}


def test_config_change_reruns_that_stage_and_the_ones_after(tmp_path):
    calls: list[str] = []
    _run(tmp_path, _stages(calls))
    calls.clear()
    status = _run(tmp_path, _stages(calls), b=5)
    assert calls == ["second", "third"]
    assert status["first"] == "skipped"


def test_resume_after_a_kill_does_not_redo_finished_stages(tmp_path):
    calls: list[str] = []
    with pytest.raises(RuntimeError):
        _run(tmp_path, _stages(calls, fail_at="third"))
    assert calls == ["first", "second"]
    calls.clear()
    _run(tmp_path, _stages(calls))
    assert calls == ["third"]


def test_from_stage_redoes_everything_from_there(tmp_path):
    calls: list[str] = []
    _run(tmp_path, _stages(calls))
    calls.clear()
    _run(tmp_path, _stages(calls), from_stage="second")
    assert calls == ["second", "third"]


def test_deleted_output_is_rebuilt(tmp_path):
    calls: list[str] = []
    _run(tmp_path, _stages(calls))
    (tmp_path / "second.txt").unlink()
    calls.clear()
    _run(tmp_path, _stages(calls))
    assert calls == ["second", "third"]


def test_unknown_from_stage_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="unknown stage 'nope'"):
        _run(tmp_path, _stages([]), from_stage="nope")


def test_a_stage_killed_during_a_rerun_is_not_taken_for_up_to_date(tmp_path):
    calls: list[str] = []
    _run(tmp_path, _stages(calls))
    with pytest.raises(RuntimeError):
        _run(tmp_path, _stages(calls, fail_at="second"), from_stage="second")
    calls.clear()
    _run(tmp_path, _stages(calls))
    assert calls == ["second", "third"]


def test_from_stage_moves_its_checkpoints_aside(tmp_path):
    calls: list[str] = []
    stages = _stages(calls)
    stages[1].state = lambda config, layout: [layout.out / "second" / "checkpoints"]
    _run(tmp_path, stages)
    (tmp_path / "second" / "checkpoints").mkdir(parents=True)
    (tmp_path / "second" / "checkpoints" / "last.ckpt").write_text("finished")
    _run(tmp_path, stages)  # up to date: nothing moves
    assert (tmp_path / "second" / "checkpoints" / "last.ckpt").exists()
    _run(tmp_path, stages, from_stage="second")
    assert not (tmp_path / "second" / "checkpoints").exists()
    assert len(list((tmp_path / "second").glob("checkpoints.old-*"))) == 1


def test_an_interruption_names_the_stage_and_its_checkpoint(tmp_path):
    import signal

    from usconvirt.errors import Interrupted

    calls: list[str] = []
    stages = _stages(calls)
    checkpoints = tmp_path / "second" / "checkpoints"
    stages[1].state = lambda config, layout: [checkpoints]

    def killed(config, layout):
        checkpoints.mkdir(parents=True, exist_ok=True)
        (checkpoints / "last.ckpt").write_text("partial")
        raise Interrupted(signal.SIGTERM)

    stages[1].run = killed
    with pytest.raises(Interrupted) as stop:
        _run(tmp_path, stages)
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

