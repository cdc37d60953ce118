"""Does the same pipeline command, run twice in two processes, write the same files?

    OMP_NUM_THREADS=1 python bench/reproducibility.py [CONFIG.yaml] [--work DIR] [--set KEY=VALUE ...]

Runs `usconvirt run CONFIG` (configs/demo.yaml by default; `--set pretrain.epochs=2` overrides one key,
the value read as YAML) twice, each in a new interpreter with its own PYTHONHASHSEED, into the same run
directory (the first run moved aside, so that paths written into outputs match), then compares every
file byte for byte. Prints one row per top-level entry of the run directory (files, identical,
differing), then what differs in each differing file: its JSON keys or CSV columns, else its bytes.
Timings (seconds, samples/s), report.html's generation time and the fingerprints that decide what reruns
(manifest.json inputs, checkpoints/fingerprint.json, made_from.json: sizes and modification times of the
inputs) differ by design; anything else that differs is a reproducibility bug.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from seed_study import with_setting  # bench/ is on sys.path when a bench script runs
from usconvirt.config import load_yaml, save_yaml

DEMO = Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"


def run_once(config: Path, out: Path, hash_seed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    subprocess.run([sys.executable, "-m", "usconvirt", "run", str(config), "--out", str(out)], env=env,
                   check=True)


def _flat(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def what_differs(first: Path, second: Path) -> str:
    """The JSON keys or CSV columns whose values differ, else 'bytes'."""
    if first.suffix == ".json":
        a, b = (_flat(json.loads(p.read_text())) for p in (first, second))
        return "keys " + ", ".join(sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k)))
    if first.suffix == ".csv":
        a, b = pd.read_csv(first), pd.read_csv(second)
        if a.shape == b.shape and list(a.columns) == list(b.columns):
            return "columns " + ", ".join(c for c in a.columns if not a[c].equals(b[c]))
    return "bytes"


def compare(first: Path, second: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """(files, identical, differing per top-level entry; what differs in each differing file)."""
    names = sorted({p.relative_to(root) for root in (first, second) for p in root.rglob("*") if p.is_file()})
    rows, differing = [], {}
    for name in names:
        a, b = first / name, second / name
        same = a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()
        if not same:
            differing[str(name)] = what_differs(a, b) if a.is_file() and b.is_file() else "only in one run"
        rows.append({"entry": name.parts[0], "identical": int(same), "differing": int(not same)})
    table = pd.DataFrame(rows).groupby("entry").agg(
        files=("identical", "size"), identical=("identical", "sum"), differing=("differing", "sum"))
    return table, differing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", type=Path, default=DEMO)
    parser.add_argument("--work", type=Path, help="where the two runs go (default: a temporary directory)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="reproducibility."))
    work.mkdir(parents=True, exist_ok=True)
    config = load_yaml(args.config)
    for assignment in args.overrides:
        config = with_setting(config, assignment)
    config = save_yaml(config, work / "config.yaml")
    run, first = work / "run", work / "first"
    for path in (run, first):
        shutil.rmtree(path, ignore_errors=True)
    run_once(config, run, hash_seed="1")
    run.rename(first)
    run_once(config, run, hash_seed="2")
    table, differing = compare(first, run)
    print(table.to_string())
    print(f"\n{int(table['identical'].sum())} of {int(table['files'].sum())} files identical; differing:")
    for name, what in differing.items():
        print(f"  {name}: {what}")


if __name__ == "__main__":
    main()
