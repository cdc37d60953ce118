"""The pipeline engine: stages in order, a manifest that decides what reruns, one run per directory.

Each stage reads files and writes files in the run directory (their names: `usconvirt.run_layout`).
The manifest (RUN/manifest.json) records, per finished stage, the hash of its typed config sections
and fingerprints of its declared inputs; a stage whose outputs exist and whose inputs and config are
unchanged is skipped, so a killed run resumes. A stage's entry is removed when it starts and written
when it finishes, so a stage killed mid-way is never taken for up to date. The stage table itself
lives in `usconvirt.stages` and is handed to `run_pipeline`, which keeps this module free of any
stage's imports.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Any

from usconvirt.config import config_hash, save_yaml, to_dict
from usconvirt.errors import InputError, Interrupted
from usconvirt.io import read_json_or_empty, write_json
from usconvirt.run_layout import LOCK, RunLayout
from usconvirt.run_state import current_stage_key

log = logging.getLogger(__name__)


@dataclass
class Stage:
    """One step of the pipeline, its only door: its config sections, the files it reads and writes, and
    `run(config, layout) -> summary line`, which `usconvirt run`, its own subcommand and the benches call."""

    name: str
    run: Callable[[Any, RunLayout], str]
    inputs: Callable[[Any, RunLayout], list[Path]]
    outputs: Callable[[Any, RunLayout], list[Path]]
    sections: tuple[str, ...] = ()  # typed config sections whose change makes the stage stale
    enabled: Callable[[Any, RunLayout], bool] = lambda config, layout: True
    # Resumable state (checkpoint directories): moved aside when `--from` asks for the stage from scratch.
    state: Callable[[Any, RunLayout], list[Path]] = lambda config, layout: []


def fingerprint(path: Path) -> str:
    """Cheap content fingerprint: sizes and mtimes of a file or of every file below a directory."""
    if not path.exists():
        return "missing"
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()
                                                  and ".usconvirt-cache" not in p.parts)
    digest = hashlib.sha256()
    for f in files:
        st = f.stat()
        digest.update(f"{f.relative_to(path.parent)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def stage_key(config: Any, layout: RunLayout, stage: Stage) -> dict[str, Any]:
    """What the stage was made from: the hash of its typed config sections and its inputs' fingerprints."""
    return {
        "config": config_hash({s: _plain(getattr(config, s)) for s in stage.sections}),
        "inputs": {layout.relative(p): fingerprint(p) for p in stage.inputs(config, layout)},
    }


def up_to_date(config: Any, layout: RunLayout, stage: Stage, key: dict[str, Any],
               done: dict[str, Any]) -> bool:
    """Whether `stage`, recorded as `done` in the manifest, needs no rerun: its outputs exist and it was
    made from the config and inputs of `key` (its `stage_key` now)."""
    outputs_exist = all(p.exists() for p in stage.outputs(config, layout))
    return outputs_exist and done.get("config") == key["config"] and done.get("inputs") == key["inputs"]


def _plain(value: Any) -> Any:
    return to_dict(value) if is_dataclass(value) else value


def load_manifest(layout: RunLayout) -> dict[str, Any]:
    return json.loads(layout.manifest.read_text()) if layout.manifest.exists() else {}


def save_manifest(layout: RunLayout, manifest: dict[str, Any]) -> None:
    write_json(manifest, layout.manifest)


def run_decisions(layout: RunLayout) -> dict[str, Any]:
    """The machine-dependent choices recorded for this run (see run_pipeline's `decide`)."""
    return load_manifest(layout).get("decisions", {})


def stage_names(stages: list[Stage]) -> list[str]:
    return [s.name for s in stages]


def check_from_stage(stages: list[Stage], from_stage: str | None) -> None:
    if from_stage is not None and from_stage not in stage_names(stages):
        raise InputError(f"unknown stage '{from_stage}', expected one of {', '.join(stage_names(stages))}",
                         field="--from")


def run_stages(config: Any, layout: RunLayout, stages: list[Stage], *, from_stage: str | None = None,
               echo: Callable[[str], None] = print, decisions: dict[str, Any] | None = None,
               ) -> dict[str, str]:
    """Run stages in order; returns each stage's status (done, skipped, disabled)."""
    check_from_stage(stages, from_stage)
    layout.out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(layout)
    manifest.setdefault("stages", {})
    if decisions:
        manifest["decisions"] = decisions
        save_manifest(layout, manifest)
    redo = False
    status: dict[str, str] = {}
    for i, stage in enumerate(stages, 1):
        forced = stage.name == from_stage
        redo = redo or forced
        prefix = f"[{i}/{len(stages)}] {stage.name:<16}"
        if not stage.enabled(config, layout):
            status[stage.name] = "disabled"
            echo(f"{prefix} disabled")
            continue
        key = stage_key(config, layout, stage)
        if not redo and up_to_date(config, layout, stage, key, manifest["stages"].get(stage.name, {})):
            status[stage.name] = "skipped"
            echo(f"{prefix} up to date, skipped")
            continue
        redo = True  # everything after a rerun stage reruns too
        if forced:
            _move_aside(config, layout, stage, echo)
        manifest["stages"].pop(stage.name, None)
        save_manifest(layout, manifest)
        start = time.perf_counter()
        token = current_stage_key.set(config_hash(key))
        try:
            note = stage.run(config, layout)
        except Interrupted as stop:
            raise stop.at(stage.name, _resumable(config, layout, stage)) from None
        finally:
            current_stage_key.reset(token)
        seconds = time.perf_counter() - start
        outputs = [layout.relative(p) for p in stage.outputs(config, layout)]
        manifest["stages"][stage.name] = {**key, "seconds": round(seconds, 1), "outputs": outputs}
        save_manifest(layout, manifest)
        status[stage.name] = "done"
        echo(f"{prefix} done in {seconds:5.1f} s" + (f"  ({note})" if note else ""))
    return status


def _move_aside(config: Any, layout: RunLayout, stage: Stage, echo: Callable[[str], None]) -> None:
    for state in stage.state(config, layout):
        if state.exists():
            aside = state.with_name(f"{state.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
            state.rename(aside)
            echo(f"      {stage.name}: --from starts it afresh; earlier checkpoints moved to "
                 f"{layout.relative(aside)}")


def _resumable(config: Any, layout: RunLayout, stage: Stage) -> Path | None:
    found = [d / "last.ckpt" for d in stage.state(config, layout) if (d / "last.ckpt").exists()]
    return found[0] if found else None


@contextmanager
def run_lock(out: Path, echo: Callable[[str], None] = print) -> Iterator[None]:
    """One run per directory: RUN/.lock holds pid and host; a dead process's lock is taken over."""
    path = out / LOCK
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_json_or_empty(path)
            if holder.get("host") == me["host"] and not _alive(holder.get("pid")):
                echo(f"note: taking over the lock of a run that is no longer alive (pid {holder.get('pid')}, "
                     f"since {holder.get('since')})")
                path.unlink(missing_ok=True)
                continue
            raise InputError(f"another usconvirt run holds this run directory (pid {holder.get('pid')} on "
                             f"{holder.get('host')}, since {holder.get('since')}); wait for it to end, or "
                             f"delete {LOCK} if that run is gone", file=out) from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:  # a dead holder's lock reappeared between our takeover and our own create: someone else won
        raise InputError("another usconvirt run took this run directory's lock just now", file=out)
    try:
        yield
    finally:
        if read_json_or_empty(path).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_pipeline(config: dict[str, Any], stages: list[Stage], *, out: str | Path | None = None,
                 from_stage: str | None = None, echo: Callable[[str], None] = print, quiet: bool = False,
                 source: str = "config", decide: Callable[[Any], dict[str, Any]] | None = None,
                 ) -> tuple[Any, RunLayout]:
    """Validate `config` whole, then run `stages` in the run directory; saves the resolved config there.

    Nothing is written before the config (every section and key, and its input paths) and `--from` are
    known to be valid.
    `decide` makes the run's environment-dependent choices once (e.g. whether ImageNet weights are
    cached); they are recorded in the manifest, where stages read them (`run_decisions`).
    """
    from usconvirt.pipeline_config import validate_run_config

    settings = validate_run_config({**config, "out": str(out or config.get("out") or "runs/run")},
                                   source=source)
    check_from_stage(stages, from_stage)
    if quiet:
        from usconvirt.logging_setup import quiet_pipeline_output

        quiet_pipeline_output()
    layout = RunLayout(Path(settings.out), dataset=Path(settings.dataset) if settings.dataset else None)
    layout.out.mkdir(parents=True, exist_ok=True)
    with run_lock(layout.out, echo):
        save_yaml(settings, layout.resolved_config)
        run_stages(settings, layout, stages, from_stage=from_stage, echo=echo,
                   decisions=decide(settings) if decide is not None else None)
    return settings, layout
