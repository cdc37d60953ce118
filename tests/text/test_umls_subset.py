from usconvirt.text.umls import SUBSET_DIR, load_terminology
from usconvirt.text.umls_subset import write_subset

ISSUE_CUIS = {
    "C0022646", "C0227613", "C0227614", "C0227665", "C0227666", "C0022651", "C0022655", "C0041951",
    "C0023884", "C0016976", "C0037993", "C0030274", "C0005682", "C0003483", "C0003484", "C0005400",
    "C0009437", "C0033572", "C0042149", "C0020295", "C0022650", "C0010709",
}
ISSUE_15_ANATOMY = {"C0022657", "C0035065", "C0035092"}  # kidney medulla, renal artery, renal veins


def test_shipped_rrf_files_are_what_the_generator_writes(tmp_path):
    conso, sty = write_subset(out_dir=tmp_path)
    assert conso.read_text(encoding="utf-8") == (SUBSET_DIR / "MRCONSO.RRF").read_text(encoding="utf-8")
    assert sty.read_text(encoding="utf-8") == (SUBSET_DIR / "MRSTY.RRF").read_text(encoding="utf-8")


def test_mrconso_has_18_fields_a_trailing_pipe_and_french_rows():
    lines = (SUBSET_DIR / "MRCONSO.RRF").read_text(encoding="utf-8").splitlines()
    assert lines
    for line in lines:
        assert line.endswith("|")
        fields = line.split("|")[:-1]
        assert len(fields) == 18
        assert fields[1] == "FRE"


def test_subset_covers_every_concept_of_the_issue_with_types():
    terminology = load_terminology(None, semantic_types=("T023",), extra_cuis=("C0020295", "C0022650",
                                                                               "C0010709"))
    assert set(terminology.terms) == ISSUE_CUIS | ISSUE_15_ANATOMY
    assert "T023" in terminology.semantic_types["C0022646"]
    assert "T023" not in terminology.semantic_types["C0010709"]
    assert {"rein", "reins", "rénal", "rénale", "rénaux"} <= set(terminology.terms["C0022646"])
    assert "CPC" in terminology.terms["C0022651"]
    assert {"RD"} <= set(terminology.terms["C0227613"]) and {"RG"} <= set(terminology.terms["C0227614"])


def test_semantic_type_filter_drops_other_types():
    terminology = load_terminology(None, semantic_types=("T023",))
    assert "C0010709" not in terminology.terms  # cyst is T190
    assert "C0022646" in terminology.terms
