"""read_dicom_frames on the real ultrasound DICOMs of pydicom.examples, one per photometric interpretation."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom import examples

from usconvirt.data.dicom import read_dicom, read_dicom_frames, recorded_laterality
from usconvirt.data.images import read_frame
from usconvirt.errors import InputError

# (example, photometric interpretation in the file, frames, (rows, columns))
EXAMPLES = [
    ("palette_color", "PALETTE COLOR", 1, (350, 800)),
    ("rgb_color", "RGB", 1, (240, 320)),
    ("ybr_color", "YBR_FULL_422", 30, (240, 320)),  # JPEG baseline, multi-frame
    ("jpeg2k", "YBR_RCT", 1, (480, 640)),  # JPEG 2000
]


@pytest.mark.parametrize(("name", "photometric", "n_frames", "shape"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_every_frame_is_uint8_rgb(name, photometric, n_frames, shape):
    path = getattr(examples, name).filename
    assert pydicom.dcmread(path, stop_before_pixels=True).PhotometricInterpretation == photometric
    frames = read_dicom_frames(path)
    assert len(frames) == n_frames
    for frame in frames:
        assert frame.dtype == np.uint8 and frame.shape == (*shape, 3)
    assert 5 < frames[0].mean() < 200  # decoded to an image, not zeros or noise-saturated


def test_palette_colour_uses_the_lookup_table():
    ds = examples.palette_color
    index = ds.pixel_array
    frame = read_dicom_frames(ds.filename)[0]
    # Pixels with the same palette index get the same colour, and the LUT maps index 0 to black here.
    assert len(np.unique(frame[index == index.flat[0]].reshape(-1, 3), axis=0)) == 1
    assert frame[index == 0].max() == 0


def test_ybr_is_converted_to_rgb():
    frame = read_dicom_frames(examples.ybr_color.filename)[10]
    gray_pixels = frame[frame.max(axis=2) > 40]
    # Ultrasound B-mode is gray: after YBR->RGB the channels agree; undecoded YBR would have Cb, Cr ~ 128.
    assert np.abs(gray_pixels[:, 0].astype(int) - gray_pixels[:, 2]).mean() < 12


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_monochrome_frames(tmp_path, photometric):
    ds = examples.ct  # 16-bit MONOCHROME2
    ds.PhotometricInterpretation = photometric
    ds.save_as(tmp_path / "mono.dcm")
    frame = read_dicom_frames(tmp_path / "mono.dcm")[0]
    raw = examples.ct.pixel_array.astype(float)
    assert frame.dtype == np.uint8 and frame.shape == raw.shape
    corr = np.corrcoef(frame.ravel(), raw.ravel())[0, 1]
    assert corr > 0.99 if photometric == "MONOCHROME2" else corr < -0.99  # MONOCHROME1: 0 is white


def test_header_fields_for_linking():
    image = read_dicom(examples.rgb_color.filename)
    assert image.study_uid == str(examples.rgb_color.StudyInstanceUID)
    assert image.sop_instance_uid == str(examples.rgb_color.SOPInstanceUID)


@pytest.mark.parametrize(("image_laterality", "series_laterality", "side"), [
    ("L", None, "left"), ("r ", None, "right"), ("B", "L", "both"), ("U", "R", "right"), (None, None, ""),
])
def test_recorded_laterality_prefers_the_image_tag(image_laterality, series_laterality, side):
    ds = pydicom.Dataset()
    if image_laterality is not None:
        ds.ImageLaterality = image_laterality
    if series_laterality is not None:
        ds.Laterality = series_laterality
    assert recorded_laterality(ds) == side


def test_corrupt_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00garbage" * 10)
    with pytest.raises(InputError, match="broken.dcm"):
        read_dicom_frames(bad)
    with pytest.raises(InputError, match="broken.dcm"):
        read_frame(bad)


def test_truncated_pixel_data_names_the_file(tmp_path):
    data = open(examples.rgb_color.filename, "rb").read()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.dcm"):
        read_dicom_frames(cut)


def _structured_report(path):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID = generate_uid(), ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta, ds.SOPClassUID, ds.StudyInstanceUID = meta, meta.MediaStorageSOPClassUID, generate_uid()
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize(("name", "by_design"), [
    ("DICOMDIR", True), ("report_sr", True), ("notes.txt", True),  # no image here, and none meant
    ("DICOMDIR_stub", False), ("corrupt.dcm", False),  # meant to be DICOM, and broken
])
def test_a_file_without_an_image_by_design_is_told_from_a_broken_one(tmp_path, name, by_design):
    from pydicom.data import get_testdata_file

    from usconvirt.data.dicom import NotAnImage, read_dicom_header

    path = tmp_path / name
    writers = {"DICOMDIR": lambda p: p.write_bytes(open(get_testdata_file("DICOMDIR"), "rb").read()),
               "report_sr": _structured_report, "notes.txt": lambda p: p.write_text("export log"),
               "DICOMDIR_stub": lambda p: p.write_bytes(b"\0" * 128 + b"DICM"),
               "corrupt.dcm": lambda p: p.write_bytes(b"this is not a DICOM file")}
    writers[name](path)
    with pytest.raises(InputError) as error:
        read_dicom_header(path)
    assert isinstance(error.value, NotAnImage) == by_design, str(error.value)
