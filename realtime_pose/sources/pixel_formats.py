"""Camera pixel formats (GenICam PFNC names) to the BGR ``uint8`` images the loop works on."""

from __future__ import annotations

import cv2
import numpy as np

# GenICam names the Bayer pattern by its first row; OpenCV by the second row's pixels.
_BAYER = {
    "BayerRG": cv2.COLOR_BayerBG2BGR,
    "BayerBG": cv2.COLOR_BayerRG2BGR,
    "BayerGR": cv2.COLOR_BayerGB2BGR,
    "BayerGB": cv2.COLOR_BayerGR2BGR,
}
_COLOR = {
    "BGR8": None,
    "RGB8": cv2.COLOR_RGB2BGR,
    "RGBa8": cv2.COLOR_RGBA2BGR,
    "RGBA8": cv2.COLOR_RGBA2BGR,
    "BGRa8": cv2.COLOR_BGRA2BGR,
    "BGRA8": cv2.COLOR_BGRA2BGR,
}
_MONO_BITS = {"Mono8": 8, "Mono10": 10, "Mono12": 12, "Mono14": 14, "Mono16": 16}

#: Formats :func:`to_bgr` converts (Bayer at 8 bits and above as ``BayerXX8``…``BayerXX16``).
SUPPORTED = (*_MONO_BITS, *_COLOR, *(f"{b}{n}" for b in _BAYER for n in (8, 10, 12, 16)))


def normalise(pixel_format: str) -> str:
    """A vendor's name in PFNC spelling (pylon's ``BGR8Packed`` → ``BGR8``)."""
    return pixel_format.removesuffix("Packed")


def channels(pixel_format: str) -> int:
    """Values per pixel in the raw buffer."""
    name = normalise(pixel_format)
    if name in ("RGBa8", "RGBA8", "BGRa8", "BGRA8"):
        return 4
    return 3 if name in _COLOR else 1


def bits(pixel_format: str) -> int:
    """Significant bits per value (8 for colour formats)."""
    name = normalise(pixel_format)
    if name in _MONO_BITS:
        return _MONO_BITS[name]
    for bayer in _BAYER:
        if name.startswith(bayer):
            return int(name[len(bayer) :])
    return 8


def to_bgr(raw: np.ndarray, pixel_format: str) -> np.ndarray:
    """A raw camera image (``[H, W]`` or ``[H, W, C]``, 8 or 16 bit) as BGR ``uint8`` ``[H, W, 3]``.

    Raises
    ------
    ValueError
        For a pixel format not in :data:`SUPPORTED`.
    """
    name = normalise(pixel_format)
    if name in _COLOR:
        code = _COLOR[name]
        return raw if code is None else cv2.cvtColor(raw, code)
    depth = bits(name)
    if depth > 8:
        raw = (raw >> (depth - 8)).astype(np.uint8)
    if name in _MONO_BITS:
        return cv2.cvtColor(raw, cv2.COLOR_GRAY2BGR)
    for bayer, code in _BAYER.items():
        if name.startswith(bayer):
            return cv2.cvtColor(raw, code)
    raise ValueError(
        f"pixel format {pixel_format!r} is not supported; use one of {', '.join(SUPPORTED)}"
    )
