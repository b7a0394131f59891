#!/usr/bin/env python3
"""Choose the near-duplicate threshold of ``--collect`` by measurement on the sample footage.

Frames of sample_videos/ scaled to 1080p stand for a camera's picture; each is seen again with
Gaussian sensor noise (sigma 2) and a JPEG re-encode (quality 80), which must count as the same
picture (a save of it again is a *missed duplicate*); frames of the same video at least 6 s
apart, the two videos, and each of those at a fifth of the contrast, must count as different
(skipping one is a *false duplicate*).
The same stills at a fifth of the contrast (a dim scene) and three plain walls (flat, a
lighting gradient, a vignette) are seen with the same noise.

Prints, for the area-averaged thumbnail difference (``livecam.collect.dedupe``) at several
thresholds and for the bilinear-sampled dHash livecam used before at its 15-bit threshold, how
many missed and false duplicates each makes.

    .venv/bin/python scripts/measure_dedupe.py
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from livecam.collect.dedupe import difference, fingerprint

SAMPLES = Path(__file__).resolve().parent.parent / "sample_videos"
SIZE = (1920, 1080)
NOISE_SIGMA = 2.0
JPEG_QUALITY = 80
COPIES = 10
APART_S = 6.0
THRESHOLDS = (0.002, 0.003, 0.004, 0.006, 0.008, 0.010)

Image = npt.NDArray[np.uint8]
T = TypeVar("T")


def dhash_near(a: int, b: int) -> bool:
    """The old rule: fewer than 15 of 256 bits differ."""
    return (a ^ b).bit_count() < 15


def frames(name: str, every_s: float) -> list[tuple[float, Image]]:
    """(time, 1080p frame) every ``every_s`` seconds of ``sample_videos/name``."""
    capture = cv2.VideoCapture(str(SAMPLES / name))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    step = max(1, round(every_s * fps))
    found: list[tuple[float, Image]] = []
    index = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        if index % step == 0:
            found.append((index / fps, np.asarray(cv2.resize(image, SIZE, interpolation=cv2.INTER_CUBIC), np.uint8)))
        index += 1
    capture.release()
    return found


def seen_again(image: Image, rng: np.random.Generator) -> Image:
    """``image`` with sensor noise, through a JPEG encoder and decoder."""
    noisy = np.clip(image.astype(np.float32) + rng.normal(0, NOISE_SIGMA, image.shape), 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    assert ok
    return np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR), np.uint8)


def walls() -> list[Image]:
    """A flat grey wall, one lit from the side (a smooth gradient) and one darker at the edges."""
    ys, xs = np.mgrid[0 : SIZE[1], 0 : SIZE[0]].astype(np.float32)
    flat = np.full((SIZE[1], SIZE[0]), 128.0, np.float32)
    lit = 110 + 30 * xs / SIZE[0] + 10 * ys / SIZE[1]
    vignette = 140 - 40 * (((xs - SIZE[0] / 2) / SIZE[0]) ** 2 + ((ys - SIZE[1] / 2) / SIZE[1]) ** 2)
    return [np.dstack([np.clip(w, 0, 255).astype(np.uint8)] * 3) for w in (flat, lit, vignette)]


def dim(image: Image) -> Image:
    """The same scene at night: a fifth of the contrast."""
    return np.asarray(cv2.convertScaleAbs(image, alpha=0.2, beta=20), np.uint8)


def old_dhash(image: Image) -> int:
    """The dHash livecam used before: a bilinear 136x128 sample averaged to 17x16, neighbour signs."""
    sampled = cv2.resize(image, (136, 128), interpolation=cv2.INTER_LINEAR)
    gray = cv2.cvtColor(cv2.resize(sampled, (17, 16), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return int.from_bytes(np.packbits(gray[:, 1:] > gray[:, :-1]).tobytes(), "big")


def count(
    measure: Callable[[Image], T], near: Callable[[T, T], bool], data: dict[str, list[Image]]
) -> tuple[int, int, int, int]:
    """(missed duplicates, copies; false duplicates, distinct pairs) for one rule."""
    copies = [near(measure(a), measure(b)) for a, b in zip(data["base"], data["copy"], strict=True)]
    values = [measure(image) for image in data["distinct"]]
    false = sum(near(a, b) for a, b in itertools.combinations(values, 2))
    return copies.count(False), len(copies), false, len(values) * (len(values) - 1) // 2


def main() -> int:
    rng = np.random.default_rng(0)
    videos = {name: frames(name, 1.0) for name in ("vtest.avi", "bikes.mp4")}
    if not all(videos.values()):
        print("sample_videos/vtest.avi and bikes.mp4 are needed", file=sys.stderr)
        return 1
    day = [image for found in videos.values() for _, image in found[:: max(1, len(found) // 10)]]
    stills = day + [dim(image) for image in day] + walls()
    base = [image for image in stills for _ in range(COPIES)]
    data = {
        "base": base,
        "copy": [seen_again(image, rng) for image in base],
        "distinct": [image for found in videos.values() for t, image in found if round(t / APART_S, 6).is_integer()],
    }
    data["distinct"] += [dim(image) for image in data["distinct"]]
    prints = {name: [fingerprint(image) for image in images] for name, images in data.items()}
    noisy = [difference(a, b) for a, b in zip(prints["base"], prints["copy"], strict=True)]
    apart = [difference(a, b) for a, b in itertools.combinations(prints["distinct"], 2)]
    print(f"{len(stills)} stills ({COPIES} noisy copies each), {len(data['distinct'])} distinct frames")
    print(f"thumbnail difference: noisy copies at most {max(noisy):.4f}, distinct frames at least {min(apart):.4f}")
    print("| measure | threshold | missed duplicates | false duplicates |")
    print("|---|---|---|---|")
    for threshold in THRESHOLDS:
        missed = sum(value >= threshold for value in noisy)
        false = sum(value < threshold for value in apart)
        print(f"| thumbnail difference | {threshold:g} | {missed} of {len(noisy)} | {false} of {len(apart)} |")
    missed, copies, false, pairs = count(old_dhash, dhash_near, data)
    print(f"| dHash (before) | 15 of 256 bits | {missed} of {copies} | {false} of {pairs} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
