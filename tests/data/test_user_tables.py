"""Users' own tables (any CSV dialect and encoding), stable shards, and progress lines."""

from __future__ import annotations

import pytest

from usconvirt.data.progress import ProgressReporter, format_duration
from usconvirt.data.shard import Shard, parse_shard, shard_of
from usconvirt.data.user_tables import read_user_table
from usconvirt.errors import InputError

ROWS = [("1.2.3", "Rein gauche : kyste, 12 mm ; foie stéatosique."), ("4.5.6", "Pas d'anomalie; « normal ».")]


@pytest.mark.parametrize(("sep", "encoding"), [(",", "utf-8"), (";", "cp1252"), ("\t", "utf-8-sig"),
                                               (";", "utf-16"), ("|", "utf-8")])
def test_dialects_and_encodings_are_sniffed(tmp_path, sep, encoding):
    lines = [f"StudyInstanceUID{sep}report"] + [f'{key}{sep}"{text}"' for key, text in ROWS]
    path = tmp_path / "reports.csv"
    path.write_bytes("\r\n".join(lines).encode(encoding))
    table = read_user_table(path)
    assert list(table.columns) == ["StudyInstanceUID", "report"]
    assert list(map(tuple, table.to_numpy())) == ROWS


def test_forced_encoding_wins(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("id;report\n1;réel\n".encode("latin-1"))
    assert read_user_table(path, encoding="latin-1")["report"].tolist() == ["réel"]
    with pytest.raises(InputError, match="unknown encoding"):
        read_user_table(path, encoding="klingon")


@pytest.mark.parametrize("name", ["reports.csv", "labels.parquet"])
def test_a_folder_named_like_a_table_is_named(tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(InputError, match=f"{name}: is a folder, expected a table file"):
        read_user_table(tmp_path / name)


def test_shards_are_stable_and_cover_everything():
    ids = [f"exam-{i:016x}" for i in range(400)]
    shards = [Shard(i, 4) for i in range(4)]
    owners = [[s.holds(e) for s in shards].index(True) for e in ids]
    assert all(sum(s.holds(e) for s in shards) == 1 for e in ids)
    assert min(owners.count(i) for i in range(4)) > 60  # roughly even
    assert shard_of(ids[0], 4) == shard_of(ids[0], 4) == owners[0]
    assert parse_shard("1/4") == Shard(1, 4) and parse_shard(None) is None
    for bad in ("4/4", "1", "a/b", "-1/3", "0/0"):
        with pytest.raises(InputError, match="shard"):
            parse_shard(bad)


def test_progress_line_and_durations():
    progress = ProgressReporter("ingest", 1000, "frames", terminal=False)
    progress.advance(250)
    line = progress.line(progress._start + 10.0)
    assert line == "ingest: 250/1,000 frames (25%), 25.0 frames/s, 30 s left"
    assert format_duration(3725) == "1 h 02 min" and format_duration(65) == "1 min 05 s"
    assert format_duration(float("inf")) == "unknown"
