"""Which JPEG quality last compressed a frame now stored losslessly? For each frame, the DCT coefficients
of its aligned 8 x 8 luminance blocks are compared with the multiples of the standard (IJG) luminance
table at several qualities: a frame that went through JPEG at quality q leaves residuals near 0 at q,
a frame that never did leaves about 0.25 (uniform) at every q.

    python docs/experiments/export/jpeg_quality.py ../shared/data/real
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.fft import dctn

IJG_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]).reshape(8, 8)
QUALITIES = (50, 60, 70, 75, 80, 85, 90, 95)


def table(quality: int) -> np.ndarray:
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return np.clip((IJG_LUMINANCE * scale + 50) // 100, 1, 255)


def residual(path: Path, quality: int) -> float:
    """Mean distance of the low-frequency coefficients to the nearest multiple of their step, in steps."""
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.float64)
    y = rgb @ np.array([0.299, 0.587, 0.114]) - 128
    h, w = (s // 8 * 8 for s in y.shape)
    blocks = dctn(y[:h, :w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3), axes=(2, 3), norm="ortho")
    steps, out = table(quality), []
    for u in range(4):
        for v in range(4):
            c = blocks[:, :, u, v].ravel()
            c = c[np.abs(c) > 0.5]
            if (u or v) and len(c) >= 50:
                out.append(np.abs(c / steps[u, v] - np.round(c / steps[u, v])).mean())
    return float(np.mean(out))


if __name__ == "__main__":
    root = Path(sys.argv[1])
    for folder in ("ahn_kidney/frames/images", "kidney_stone/images"):
        best = []
        for path in sorted((root / folder).glob("*.png")):
            res = {q: residual(path, q) for q in QUALITIES}
            q = min(res, key=res.get)
            best.append(f"{q}:{res[q]:.2f}")
        print(f"{folder}: best quality:residual per frame: {' '.join(best)}")
