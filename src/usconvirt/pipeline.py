"""The pipeline engine: stages in order, a manifest that decides what reruns, one run per directory.

Each stage reads files and writes files in the run directory. The manifest (RUN/manifest.json)
records, per finished stage, the hash of its config sections and fingerprints of its declared inputs;
a stage whose outputs exist and whose inputs and config are unchanged is skipped, so a killed run
resumes. A stage's entry is removed when it starts and written when it finishes, so a stage killed
mid-way is never taken for up to date. The stage table itself lives in `usconvirt.stages` and is
handed to `run_pipeline`, which keeps this module free of any stage's imports.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from usconvirt.config import config_hash, load_yaml, save_yaml
from usconvirt.errors import InputError, Interrupted
from usconvirt.io import read_json_or_empty, write_json
from usconvirt.run_state import current_stage_key

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LOCK = ".lock"


@dataclass
class Stage:
    """One step of the pipeline: what it reads, what it writes, and how to run it."""

    name: str
    run: Callable[[RunContext], None]
    inputs: Callable[[RunContext], list[Path]]
    outputs: Callable[[RunContext], list[Path]]
    section: str | tuple[str, ...] = ()  # config section(s) whose change makes the stage stale
    enabled: Callable[[RunContext], bool] = lambda ctx: True
    # Resumable state (checkpoint directories): moved aside when `--from` asks for the stage from scratch.
    state: Callable[[RunContext], list[Path]] = lambda ctx: []


@dataclass
class RunContext:
    """The resolved config (raw and typed), the run directory's paths, and per-run decisions."""

    config: dict[str, Any]
    out: Path
    echo: Callable[[str], None] = print
    cache: dict[str, Any] = field(default_factory=dict)
    settings: Any = None  # the typed PipelineConfig, when the run was validated by run_pipeline
    decisions: dict[str, Any] = field(default_factory=dict)  # made once per run, saved in the manifest

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.config.get(name) or {})

    @property
    def dataset_dir(self) -> Path:
        given = self.config.get("dataset")
        return Path(given) if given else self.out / "dataset"

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)


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


def stage_key(ctx: RunContext, stage: Stage) -> dict[str, Any]:
    sections = (stage.section,) if isinstance(stage.section, str) else stage.section
    return {
        "config": config_hash({s: ctx.config.get(s) for s in sections}),
        "inputs": {str(p.relative_to(ctx.out) if p.is_relative_to(ctx.out) else p): fingerprint(p)
                   for p in stage.inputs(ctx)},
    }


def load_manifest(out: Path) -> dict[str, Any]:
    path = out / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def save_manifest(out: Path, manifest: dict[str, Any]) -> None:
    write_json(manifest, out / MANIFEST)


def stage_names(stages: list[Stage]) -> list[str]:
    return [s.name for s in stages]


def check_from_stage(stages: list[Stage], from_stage: str | None) -> None:
    if from_stage is not None and from_stage not in stage_names(stages):
        raise InputError(f"unknown stage '{from_stage}', expected one of {', '.join(stage_names(stages))}",
                         field="--from")


def run_stages(ctx: RunContext, stages: list[Stage], *, from_stage: str | None = None) -> dict[str, str]:
    """Run stages in order; returns each stage's status (done, skipped, disabled)."""
    check_from_stage(stages, from_stage)
    ctx.out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(ctx.out)
    manifest.setdefault("stages", {})
    if ctx.decisions:
        manifest["decisions"] = ctx.decisions
    redo = False
    status: dict[str, str] = {}
    for i, stage in enumerate(stages, 1):
        forced = stage.name == from_stage
        redo = redo or forced
        prefix = f"[{i}/{len(stages)}] {stage.name:<16}"
        if not stage.enabled(ctx):
            status[stage.name] = "disabled"
            ctx.echo(f"{prefix} disabled")
            continue
        key = stage_key(ctx, stage)
        done = manifest["stages"].get(stage.name, {})
        outputs_exist = all(p.exists() for p in stage.outputs(ctx))
        if not redo and outputs_exist and done.get("config") == key["config"] and done.get("inputs") == key[
                "inputs"]:
            status[stage.name] = "skipped"
            ctx.echo(f"{prefix} up to date, skipped")
            continue
        redo = True  # everything after a rerun stage reruns too
        if forced:
            _move_aside(ctx, stage)
        manifest["stages"].pop(stage.name, None)
        save_manifest(ctx.out, manifest)
        start = time.perf_counter()
        token = current_stage_key.set(config_hash(key))
        try:
            stage.run(ctx)
        except Interrupted as stop:
            raise stop.at(stage.name, _resumable(ctx, stage)) from None
        finally:
            current_stage_key.reset(token)
        seconds = time.perf_counter() - start
        outputs = [str(p.relative_to(ctx.out)) for p in stage.outputs(ctx)]
        manifest["stages"][stage.name] = {**key, "seconds": round(seconds, 1), "outputs": outputs}
        save_manifest(ctx.out, manifest)
        status[stage.name] = "done"
        ctx.echo(f"{prefix} done in {seconds:5.1f} s{_summary(ctx, stage.name)}")
    return status


def _move_aside(ctx: RunContext, stage: Stage) -> None:
    for state in stage.state(ctx):
        if state.exists():
            aside = state.with_name(f"{state.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
            state.rename(aside)
            ctx.echo(f"      {stage.name}: --from starts it afresh; earlier checkpoints moved to "
                     f"{aside.relative_to(ctx.out)}")


def _resumable(ctx: RunContext, stage: Stage) -> Path | None:
    found = [d / "last.ckpt" for d in stage.state(ctx) if (d / "last.ckpt").exists()]
    return found[0] if found else None


def _summary(ctx: RunContext, name: str) -> str:
    note = ctx.cache.pop(f"summary:{name}", "")
    return f"  ({note})" if note else ""


def resolve_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The YAML config (or the packaged demo config) with `overrides` merged in, section by section."""
    config = load_yaml(path) if path is not None else load_yaml(packaged_config("demo"))
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def packaged_config(name: str) -> Path:
    return Path(__file__).parent / "resources" / "configs" / f"{name}.yaml"


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
                 source: str = "config", decide: Callable[[RunContext], dict[str, Any]] | None = None
                 ) -> RunContext:
    """Validate `config` whole, then run `stages` in the run directory; saves the resolved config there.

    Nothing is written before the config (every section and key) and `--from` are known to be valid.
    `decide` makes the run's environment-dependent choices once (e.g. whether ImageNet weights are
    cached); they are recorded in the manifest.
    """
    from usconvirt.pipeline_config import validate_pipeline_config

    settings = validate_pipeline_config(config, source=source)
    check_from_stage(stages, from_stage)
    if quiet:
        from usconvirt.logging_setup import quiet_pipeline_output

        quiet_pipeline_output()

    out_dir = Path(out or config.get("out") or "runs/run")
    config = {**config, "out": str(out_dir)}
    ctx = RunContext(config=config, out=out_dir, echo=echo, settings=settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(out_dir, echo):
        save_yaml(config, out_dir / "config.resolved.yaml")
        if decide is not None:
            ctx.decisions = decide(ctx)
        run_stages(ctx, stages, from_stage=from_stage)
    return ctx

