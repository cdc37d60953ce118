"""The review page of `predict --review`: opened in headless Chromium, self-contained, pseudonyms only."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.ndimage import binary_erosion, label

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
PAGE_REQUEST = '"initiator":"null"'  # in Chromium's net log: a request by a file:// page (an opaque origin)


class _References(HTMLParser):
    """Every URL the page names: src, href, srcset and url(...) in style."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.cards: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "srcset", "action", "poster", "data"):
            if values.get(name):
                self.urls.append(values[name])
        if tag == "section" and "card" in (values.get("class") or ""):
            self.cards.append(values)

    def handle_data(self, data: str) -> None:
        for match in re.finditer(r"url\(\s*['\"]?([^'\")]+)|@import\s+['\"]([^'\"]+)", data):
            self.urls.append(match.group(1) or match.group(2))


def _chromium(url: str, tmp: Path, name: str) -> tuple[Path, str]:
    """Screenshot of `url` and Chromium's net log (fresh profile)."""
    shot, netlog = tmp / f"{name}.png", tmp / f"{name}.netlog.json"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / (name + '-profile')}",
                    "--window-size=1200,900", f"--log-net-log={netlog}", f"--screenshot={shot}", url],
                   capture_output=True, timeout=120, check=False)
    return shot, netlog.read_text(errors="replace") if netlog.is_file() else ""


@pytest.fixture(scope="module")
def page(predicted):
    out, _, code, log = predicted
    assert code == 0, log
    parser = _References()
    html = (out / "review" / "index.html").read_text(encoding="utf-8")
    parser.feed(html)
    return out, html, parser


def test_every_image_the_page_references_exists_inside_out(page):
    out, _, parser = page
    images = [u for u in parser.urls if u.endswith(".png")]
    frames = pd.read_csv(out / "frames.csv", keep_default_na=False)
    kidney = frames[frames["organ"] == "kidney"]
    assert len(kidney) > 0
    assert len(images) == len(frames) + 2 * len(kidney)  # thumbnails, then Grad-CAM and prompt overlays
    for url in parser.urls:
        target = (out / "review" / url).resolve()
        assert target.is_file() and target.is_relative_to(out.resolve()), url


def test_the_page_names_no_external_url_and_shows_the_exams_most_abnormal_first(page):
    out, html, parser = page
    for url in parser.urls:
        assert not re.match(r"^([a-z]+:)?//", url, re.IGNORECASE), url
    assert "default-src 'none'" in html and "fetch(" not in html and "XMLHttpRequest" not in html
    exams = pd.read_csv(out / "exams.csv", keep_default_na=False)
    assert [card["data-decision"] for card in parser.cards] == exams.sort_values(
        "p_abnormal", ascending=False, key=lambda p: pd.to_numeric(p, errors="coerce").fillna(-1))[
        "prediction"].tolist()
    assert 'name="decision"' in html and "dilatation des cavités" in html


@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="chromium is not installed (CI installs it)")
def test_headless_chromium_shows_cards_with_thumbnails_and_the_page_requests_nothing(page, tmp_path):
    out, _, _ = page
    shot, netlog = _chromium((out / "review" / "index.html").as_uri(), tmp_path, "review")
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (900, 1200)
    solid_dark = binary_erosion(pixels < 40, structure=np.ones((9, 9)))  # text is thinner than 9 px
    assert label(solid_dark)[1] >= 3  # thumbnails (black beside their sector) were drawn: not a blank page
    assert netlog and PAGE_REQUEST not in netlog
    control = tmp_path / "external.html"  # the check can fail: a page that loads a URL is caught
    control.write_text('<img src="http://127.0.0.1:9/x.png">', encoding="utf-8")
    _, control_log = _chromium(control.as_uri(), tmp_path, "control")
    assert PAGE_REQUEST in control_log
