"""Test set-up: no network, fixed seeds, small CPU thread counts."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_REAL = REPO.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def shared_real() -> Path:
    """../shared/data/real: real kidney frames (read-only, never copied into the repo)."""
    if not SHARED_REAL.exists():
        pytest.skip("../shared/data/real is not beside this checkout")
    return SHARED_REAL


@pytest.fixture(scope="session")
def run_main():
    """`usconvirt ARGS` in-process with stdout, stderr and the log captured, for module-scoped fixtures;
    returns (exit code, everything printed or logged)."""
    import io
    import logging
    import sys

    from usconvirt.cli import main

    def run(*args) -> tuple[int, str]:
        stream, patch = io.StringIO(), pytest.MonkeyPatch()
        patch.setattr(sys, "argv", ["usconvirt", *map(str, args)])
        patch.setattr(sys, "stdout", stream)
        patch.setattr(sys, "stderr", stream)
        handler = logging.StreamHandler(stream)
        logging.getLogger().addHandler(handler)
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            patch.undo()
            logging.getLogger().removeHandler(handler)
        return code, stream.getvalue()

    return run


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `usconvirt ARGS` in-process through `usconvirt.cli:main`; (exit code, stdout + stderr)."""
    import sys

    from usconvirt.cli import main

    def run(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["usconvirt", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        out = capsys.readouterr()
        return code, out.out + out.err

    return run


@pytest.fixture(scope="session")
def never_written_export(tmp_path_factory) -> dict:
    """A DICOM export whose headers carry a distinctive value in every field of
    `usconvirt.data.deid.NEVER_WRITTEN` (the promise of docs/data-format.md): two ultrasound studies and
    a copy cut short (header read, pixels not, so the skip path runs too), and a reports table keyed by
    StudyInstanceUID. `secrets` maps each written value, and the forms a writer could give it (a name's
    components, an ISO date), to its field; a field added to NEVER_WRITTEN is filled here too."""
    import pandas as pd
    from pydicom import examples
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    from usconvirt.data.deid import NEVER_WRITTEN
    from usconvirt.data.dicom import values_unvalidated

    dicom = tmp_path_factory.mktemp("never_written") / "export"
    dicom.mkdir()
    secrets: dict[str, str] = {}
    studies = []
    for file_no, name in enumerate(("IM0001", "IM0002", "IM0003")):
        ds = examples.rgb_color
        with values_unvalidated():  # some values (a UID) would be logged, value included, if checked
            for field_no, field in enumerate(NEVER_WRITTEN):
                value, forms = _distinctive(dictionary_VR(tag_for_keyword(field)), field_no, file_no)
                setattr(ds, field, value)
                secrets.update(dict.fromkeys(forms, field))
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.save_as(dicom / name)
        studies.append(str(ds.StudyInstanceUID))
    whole = (dicom / "IM0003").read_bytes()
    (dicom / "IM0003").write_bytes(whole[: len(whole) - 5000])
    reports = dicom.parent / "reports.csv"
    pd.DataFrame({"StudyInstanceUID": studies, "report": ["Reins de taille normale."] * len(studies)}).to_csv(
        reports, index=False)
    return {"dicom": dicom, "reports": reports, "secrets": secrets}


def _distinctive(vr: str, field_no: int, file_no: int) -> tuple[str, list[str]]:
    """A value of DICOM type `vr` that no other field or file holds, and the forms to look for."""
    tag = f"{field_no:02d}X{file_no}"
    date = f"19{field_no:02d}0{file_no + 1}1{file_no}"  # a valid date in 1900-1931
    iso_date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    if vr == "PN":
        family, given = f"PHINAME{tag}", f"SECRET{tag}"
        return f"{family}^{given}", [f"{family}^{given}", family, given]
    if vr == "DA":
        return date, [date, iso_date]
    if vr == "TM":
        # not as HH:MM:SS: the log's own timestamps could match it
        return f"21{field_no:02d}{file_no:02d}.4242", [f"21{field_no:02d}{file_no:02d}"]
    if vr == "DT":
        return f"{date}21{field_no:02d}{file_no:02d}", [f"{date}21{field_no:02d}", iso_date]
    if vr == "UI":
        return f"1.2.999.4242.{field_no}.{file_no}", [f"1.2.999.4242.{field_no}.{file_no}"]
    return f"PHI{tag}", [f"PHI{tag}"]  # fits SH (16 characters)


@pytest.fixture(scope="session")
def leaked_secrets():
    """`find(directory, secrets)`: (file, field, value) for each secret found in any file under
    `directory`, read as bytes, and as decoded tables (parquet is compressed) and PNG text chunks."""

    def find(directory: Path, secrets: dict[str, str]) -> list[tuple[str, str, str]]:
        import pandas as pd
        from PIL import Image

        found = []
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            texts = [path.read_bytes().decode("latin-1")]
            if path.suffix == ".parquet":
                texts.append(pd.read_parquet(path).astype(str).to_csv())
            elif path.suffix == ".png":
                with Image.open(path) as image:
                    texts.append(repr(image.info))
            found += [(str(path.relative_to(directory)), field, value) for value, field in secrets.items()
                      if any(value in text for text in texts)]
        return found

    return find


@pytest.fixture(autouse=True)
def _seed():
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
        torch.set_num_threads(2)
    except ImportError:
        pass


@pytest.fixture
def new_process():
    """Run `python -c CODE ARGS` in a fresh interpreter (PYTHONHASHSEED=`hash_seed` when given), importing
    the same usconvirt as this one, its stderr not a terminal; returns its stdout. What two invocations of
    one command share is only their inputs."""
    import subprocess
    import sys

    import usconvirt

    source = str(Path(usconvirt.__file__).resolve().parents[1])

    def run(code: str, *args, hash_seed: str | None = None) -> str:
        path = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path} | ({"PYTHONHASHSEED": hash_seed} if hash_seed else {})
        done = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    return run
