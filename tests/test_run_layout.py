from dataclasses import replace
from pathlib import Path

from usconvirt.run_layout import RunLayout


def test_a_given_cluster_folder_holds_the_selected_frames_unless_they_are_given_too(tmp_path: Path) -> None:
    assert RunLayout(tmp_path).selected == tmp_path / "cluster" / "selected.csv"
    moved = RunLayout(tmp_path, cluster=tmp_path / "k", split=None)
    assert moved.selected == tmp_path / "k" / "selected.csv" and moved.split == tmp_path / "split.csv"
    given = RunLayout(tmp_path, cluster=tmp_path / "k", selected=tmp_path / "mine.csv")
    assert given.selected == tmp_path / "mine.csv"
    assert replace(moved, split=tmp_path / "s.csv").selected == moved.selected


def test_the_sentences_summary_and_pairs_accounting_lie_beside_their_tables(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path)
    assert layout.sentences_summary == tmp_path / "sentences_summary.parquet"
    assert layout.pairs_accounting == tmp_path / "pairs.json"
    given = RunLayout(tmp_path, sentences=tmp_path / "s.csv", pairs=tmp_path / "p.csv")
    assert given.sentences_summary == tmp_path / "s_summary.csv"
    assert given.pairs_accounting == tmp_path / "p.json"
