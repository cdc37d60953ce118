"""End to end: `usconvirt run CONFIG.yaml` and `usconvirt demo`.

Each stage reads files and writes files in the run directory. A stage manifest (RUN/manifest.json)
records, per stage, the hash of its config section and fingerprints of its inputs; a stage whose
outputs exist and whose inputs and config are unchanged is skipped, so a killed run resumes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from usconvirt.config import config_hash, load_yaml, save_yaml
from usconvirt.errors import InputError
from usconvirt.io import atomic_path

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


@dataclass
class Stage:
    """One step of the pipeline: what it reads, what it writes, and how to run it."""

    name: str
    run: Callable[[RunContext], None]
    inputs: Callable[[RunContext], list[Path]]
    outputs: Callable[[RunContext], list[Path]]
    section: str | tuple[str, ...] = ()  # config section(s) whose change makes the stage stale
    enabled: Callable[[RunContext], bool] = lambda ctx: True


@dataclass
class RunContext:
    """The resolved config and the run directory's paths."""

    config: dict[str, Any]
    out: Path
    echo: Callable[[str], None] = print
    cache: dict[str, Any] = field(default_factory=dict)

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
    with atomic_path(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))


def run_stages(ctx: RunContext, stages: list[Stage], *, from_stage: str | None = None) -> dict[str, str]:
    """Run stages in order; returns each stage's status (done, skipped, disabled)."""
    names = [s.name for s in stages]
    if from_stage is not None and from_stage not in names:
        raise InputError(f"unknown stage '{from_stage}', expected one of {', '.join(names)}", field="--from")
    ctx.out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(ctx.out)
    redo = False
    status: dict[str, str] = {}
    for i, stage in enumerate(stages, 1):
        redo = redo or stage.name == from_stage
        prefix = f"[{i}/{len(stages)}] {stage.name:<16}"
        if not stage.enabled(ctx):
            status[stage.name] = "disabled"
            ctx.echo(f"{prefix} disabled")
            continue
        key = stage_key(ctx, stage)
        done = manifest.get(stage.name, {})
        outputs_exist = all(p.exists() for p in stage.outputs(ctx))
        if not redo and outputs_exist and done.get("config") == key["config"] and done.get("inputs") == key[
                "inputs"]:
            status[stage.name] = "skipped"
            ctx.echo(f"{prefix} up to date, skipped")
            continue
        redo = True  # everything after a rerun stage reruns too
        start = time.perf_counter()
        stage.run(ctx)
        seconds = time.perf_counter() - start
        manifest[stage.name] = {**key, "seconds": round(seconds, 1),
                                "outputs": [str(p.relative_to(ctx.out)) for p in stage.outputs(ctx)]}
        save_manifest(ctx.out, manifest)
        status[stage.name] = "done"
        ctx.echo(f"{prefix} done in {seconds:5.1f} s{_summary(ctx, stage.name)}")
    return status


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


def run_pipeline(config: dict[str, Any], *, out: str | Path | None = None, from_stage: str | None = None,
                 echo: Callable[[str], None] = print, quiet: bool = False) -> RunContext:
    """Run every stage of the pipeline described by `config`; saves the resolved config in the run dir."""
    from usconvirt.stages import STAGES

    if quiet:
        from usconvirt.logging_setup import quiet_pipeline_output

        quiet_pipeline_output()

    out_dir = Path(out or config.get("out") or "runs/run")
    config = {**config, "out": str(out_dir)}
    ctx = RunContext(config=config, out=out_dir, echo=echo)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(config, out_dir / "config.resolved.yaml")
    run_stages(ctx, STAGES, from_stage=from_stage)
    return ctx
