"""Write the shipped UMLS-format French subset (MRCONSO.RRF, MRSTY.RRF) from its reviewed source table.

Run `python -m usconvirt.text.umls_subset` after editing `resources/umls/source.csv`.
The RRF files follow the UMLS layout so that the same loaders read a user's full release.
"""

from __future__ import annotations

import csv
from pathlib import Path

from usconvirt.io import atomic_path

SUBSET_DIR = Path(__file__).resolve().parent.parent / "resources" / "umls"

# STN (tree number) and name of the semantic types the subset uses, from the UMLS Semantic Network.
SEMANTIC_TYPES = {
    "T023": ("A1.2.3.1", "Body Part, Organ, or Organ Component"),
    "T047": ("B2.2.1.2.1", "Disease or Syndrome"),
    "T190": ("A1.2.2.2", "Anatomical Abnormality"),
}
SOURCE_ABBREVIATION = "USCONVIRT"  # SAB column: these strings are ours, not a UMLS source vocabulary


def read_source(path: Path) -> list[dict[str, str]]:
    """Rows of the reviewed source table (cui, term, semantic_type, preferred, provenance)."""
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def mrconso_lines(rows: list[dict[str, str]]) -> list[str]:
    """MRCONSO.RRF lines: 18 pipe-separated fields plus a trailing pipe, LAT=FRE."""
    lines = []
    for i, row in enumerate(rows, start=1):
        fields = [
            row["cui"],
            "FRE",
            "P" if row["preferred"] == "Y" else "S",
            f"L{i:07d}",
            "PF",
            f"S{i:07d}",
            row["preferred"],
            f"A{i:07d}",
            "",
            "",
            "",
            SOURCE_ABBREVIATION,
            "PT" if row["preferred"] == "Y" else "SY",
            row["cui"],
            row["term"],
            "0",
            "N",
            "",
        ]
        lines.append("|".join(fields) + "|")
    return lines


def mrsty_lines(rows: list[dict[str, str]]) -> list[str]:
    """MRSTY.RRF lines (CUI|TUI|STN|STY|ATUI|CVF|), one per concept and semantic type."""
    pairs = sorted({(row["cui"], row["semantic_type"]) for row in rows})
    lines = []
    for i, (cui, tui) in enumerate(pairs, start=1):
        stn, name = SEMANTIC_TYPES[tui]
        lines.append("|".join([cui, tui, stn, name, f"AT{i:07d}", ""]) + "|")
    return lines


def write_subset(source: Path = SUBSET_DIR / "source.csv", out_dir: Path = SUBSET_DIR) -> tuple[Path, Path]:
    """Regenerate MRCONSO.RRF and MRSTY.RRF in `out_dir` from `source`."""
    rows = read_source(source)
    written = []
    for name, lines in (("MRCONSO.RRF", mrconso_lines(rows)), ("MRSTY.RRF", mrsty_lines(rows))):
        with atomic_path(out_dir / name) as tmp:
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(out_dir / name)
    return written[0], written[1]


if __name__ == "__main__":
    for written_path in write_subset():
        print(written_path)
