"""docs/data-format.md's promise, field by field: no header field of NEVER_WRITTEN reaches the dataset or
the log above DEBUG (the id map, outside the dataset, holds the ids by design)."""

from __future__ import annotations

import warnings

import pandas as pd

from usconvirt.data import load_dataset

KEY = "never-written-key-42"


def test_no_never_written_field_reaches_the_dataset_or_the_log(never_written_export, leaked_secrets,
                                                                 run_main, tmp_path):
    export, secrets = never_written_export, never_written_export["secrets"]
    out, id_map = tmp_path / "dataset", tmp_path / "private" / "ids.csv"
    # one worker: worker processes' log lines would not reach this capture; warnings, which pytest keeps
    # from stderr, are read as log lines
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        code, log = run_main("ingest", export["dicom"], "--reports", export["reports"], "--out", out, "--key",
                             KEY, "--id-map", id_map, "--workers", "1")
    log += "\n".join(str(w.message) for w in warned)
    assert code == 0, log
    assert len(load_dataset(out).images) == 2 and "1 skipped" in log  # both paths ran: written and skipped
    assert leaked_secrets(out, secrets) == []
    assert [(field, value) for value, field in secrets.items() if value in log] == []
    # the values were read (the id map routes back with them), so their absence above is the promise
    assert set(pd.read_csv(id_map, dtype=str)["source_value"]) & set(secrets)


def test_the_search_finds_a_value_that_compression_hides(never_written_export, leaked_secrets, tmp_path):
    value, field = next(iter(never_written_export["secrets"].items()))
    table = tmp_path / "t.parquet"  # the value's bytes become a back-reference to the first row's
    pd.DataFrame({"note": [value[:-1] + "~", value]}).to_parquet(table, compression="gzip",
                                                                 write_statistics=False, use_dictionary=False)
    assert value.encode() not in table.read_bytes()
    assert leaked_secrets(tmp_path, {value: field}) == [("t.parquet", field, value)]
