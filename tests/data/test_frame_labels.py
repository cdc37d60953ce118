"""A team's annotation table: a column ingest does not read is named in the log, not dropped unseen."""

from __future__ import annotations

import logging

from usconvirt.data.frame_labels import read_frame_labels


def test_a_translated_label_column_is_named_as_ignored(tmp_path, caplog):
    path = tmp_path / "labels.csv"
    path.write_text("SOPInstanceUID;etiquette;side;frame\n1.2.3;anormal;right;1\n", encoding="cp1252")
    with caplog.at_level(logging.WARNING, logger="usconvirt.data.frame_labels"):
        labels = read_frame_labels(path)
    assert labels.by_key == {("sop", "1.2.3", 1): {"side": "right"}}
    assert [r.getMessage() for r in caplog.records] == [
        "labels.csv: column(s) etiquette ignored; the annotation columns are organ, label, side"]
