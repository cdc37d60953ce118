"""Generate a synthetic corpus: patients, exams, frames and reports, written in the dataset format.

Determinism: the cohort (patients, exam states, frame plans, reports) is drawn in one process from
`seed`; every frame is then rendered from its own generator seeded by (seed, exam, frame), so the
output does not depend on `workers`.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import string
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from usconvirt.config import save_yaml
from usconvirt.io import atomic_dir, write_table
from usconvirt.synth.config import SynthConfig
from usconvirt.synth.dicom_writer import study_uid, write_dicom_frame
from usconvirt.synth.exam import ExamState, sample_exam
from usconvirt.synth.protocol import FramePlan, plan_frames
from usconvirt.synth.render import render_frame
from usconvirt.synth.reports import write_report

log = logging.getLogger(__name__)

RENDER_STREAM = 1  # generator stream of frame rendering, distinct from the cohort's


@dataclass
class PlannedExam:
    """An exam's truth, its frame plans and report: everything needed to render and write it."""

    index: int
    state: ExamState
    frames: list[FramePlan]
    report: str


def _initials(rng: np.random.Generator) -> str:
    letters = rng.choice(list(string.ascii_uppercase), 2)
    return f"{letters[0]}.{letters[1]}."


def plan_cohort(config: SynthConfig) -> list[PlannedExam]:
    """Patients with 1 to 3 exams each until `config.exams` exams; states, frames and reports."""
    rng = np.random.default_rng(config.seed)
    exams: list[PlannedExam] = []
    patient_no = 0
    while len(exams) < config.exams:
        patient_no += 1
        patient_id = f"patient-{patient_no:05d}-{rng.integers(16**6):06x}"
        initials, age = _initials(rng), int(rng.integers(18, 90))
        day = date(2015, 1, 1) + timedelta(days=int(rng.integers(0, 2500)))
        previous = None
        for _ in range(min(int(rng.choice([1, 2, 3], p=[0.6, 0.28, 0.12])), config.exams - len(exams))):
            index = len(exams)
            exam_id = f"exam-{index + 1:06d}-{rng.integers(16**6):06x}"
            state = sample_exam(
                rng, config.prevalences, exam_id, patient_id, day.isoformat(), initials, age, previous
            )
            frames = plan_frames(rng, state)
            imaged = {f.organ for f in frames}
            report = write_report(rng, state, imaged, config.mention_unimaged, config.omit_imaged,
                                  config.report_style)
            exams.append(PlannedExam(index, state, frames, report))
            previous, day = state, day + timedelta(days=int(rng.integers(60, 900)))
    return exams


def _frame_path(exam: PlannedExam, frame_no: int, fmt: str) -> str:
    suffix = "dcm" if fmt == "dicom" else "png"
    return f"frames/{exam.state.exam_id}/{exam.state.exam_id}-{frame_no:02d}.{suffix}"


def _render_exam(job: tuple[PlannedExam, SynthConfig, Path]) -> int:
    """Render and write every frame of one exam (runs in a worker process)."""
    exam, config, root = job
    (root / "frames" / exam.state.exam_id).mkdir(parents=True, exist_ok=True)
    for frame_no, plan in enumerate(exam.frames):
        rng = np.random.default_rng([config.seed, RENDER_STREAM, exam.index, frame_no])
        image = render_frame(rng, exam.state, plan, config.image_size, scanners=config.scanners)
        path = root / _frame_path(exam, frame_no, config.format)
        if config.format == "dicom":
            write_dicom_frame(path, image, exam.state, frame_no, seed=config.seed)
        else:
            Image.fromarray(image).save(path, compress_level=1)
    return len(exam.frames)


def _tables(exams: list[PlannedExam], fmt: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    exam_rows, image_rows, truth_rows = [], [], []
    for exam in exams:
        s = exam.state
        exam_rows.append(
            {
                "exam_id": s.exam_id,
                "patient_id": s.patient_id,
                "report": exam.report,
                "exam_date": s.exam_date,
            }
        )
        exam_truth = {
            "kidney_abnormal": s.kidney_abnormal,
            "liver": s.liver,
            "gallbladder": s.gallbladder,
            "spleen": s.spleen,
            "spleen_cm": s.spleen_cm,
            "aorta_mm": s.aorta_mm,
        }
        for side in ("right", "left"):
            k = s.kidneys[side]
            exam_truth |= {
                f"{side}_kidney": k.finding,
                f"{side}_grade": k.grade,
                f"{side}_length_cm": round(k.length_cm, 2),
                f"{side}_lesions": json.dumps([asdict(lesion) for lesion in k.lesions]),
            }
        for frame_no, plan in enumerate(exam.frames):
            image_id = f"{s.exam_id}-{frame_no:02d}"
            label = plan.label(s)
            image_rows.append(
                {
                    "image_id": image_id,
                    "exam_id": s.exam_id,
                    "path": _frame_path(exam, frame_no, fmt),
                    "organ": plan.organ,
                    "label": label,
                    "side": plan.side if plan.organ == "kidney" else "",
                    "view": plan.view,
                }
            )
            truth_rows.append(
                {
                    "exam_id": s.exam_id,
                    "image_id": image_id,
                    "organ": plan.organ,
                    "side": plan.side,
                    "view": plan.view,
                    "cut_cm": round(plan.cut, 3),
                    "label": label,
                    "finding_visible": plan.finding_visible(s),
                    "visible_lesions": ",".join(sec.lesion.kind for sec in plan.sections),
                    **exam_truth,
                }
            )
    return pd.DataFrame(exam_rows), pd.DataFrame(image_rows), pd.DataFrame(truth_rows)


def generate_corpus(out: Path, config: SynthConfig, progress: bool = False) -> Path:
    """Write a synthetic dataset to `out` (atomically): exams.csv, images.csv, frames/, truth.parquet."""
    out = Path(out)
    exams = plan_cohort(config)
    n_frames = sum(len(e.frames) for e in exams)
    log.info(
        "synth: %d exams, %d frames at %d px, %d worker(s)",
        len(exams),
        n_frames,
        config.image_size,
        config.workers,
    )
    with atomic_dir(out, overwrite=config.overwrite) as tmp:
        jobs = [(exam, config, tmp) for exam in exams]
        _run(jobs, config.workers, n_frames, progress)
        exams_df, images_df, truth_df = _tables(exams, config.format)
        write_table(exams_df, tmp / "exams.csv")
        write_table(images_df, tmp / "images.csv")
        write_table(truth_df, tmp / "truth.parquet")
        if config.format == "dicom":  # ingest links DICOM studies to reports by StudyInstanceUID
            reports = pd.DataFrame(
                {
                    "StudyInstanceUID": [study_uid(e.state, config.seed) for e in exams],
                    "report": exams_df["report"],
                }
            )
            write_table(reports, tmp / "reports_by_study.csv")
        save_yaml(config, tmp / "synth_config.yaml")
    return out


def _run(jobs: list, workers: int, n_frames: int, progress: bool) -> None:
    """Render every exam, in worker processes if asked, with an optional progress bar."""
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("rendering frames", total=n_frames)
        if workers == 1:
            for job in jobs:
                bar.advance(task, _render_exam(job))
            return
        with mp.get_context("spawn").Pool(workers) as pool:
            for done in pool.imap_unordered(_render_exam, jobs, chunksize=2):
                bar.advance(task, done)
