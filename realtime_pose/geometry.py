"""The one mapping between network-input pixels and frame pixels.

A frame is (optionally) cropped to a window whose top-left corner is ``(x0, y0)`` in frame pixels,
then resized by ``(scale_x, scale_y)`` to the network input. OpenCV's resize aligns pixel centres
(``u + 0.5 = (x + 0.5) * scale``), and so does this transform, so a keypoint found at network
pixel ``u`` lands on the frame pixel the network actually looked at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


def round_up(n: int, multiple: int) -> int:
    """``n`` rounded up to a multiple of ``multiple`` (how far an input is padded)."""
    return -(-n // multiple) * multiple


class Size(NamedTuple):
    """A width and a height in pixels, in that order.

    Every size that crosses a function boundary is a ``Size``: frames, crop windows, network
    inputs and engine shapes. NumPy's ``(height, width)`` order appears only inside functions,
    through :attr:`shape`.
    """

    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``: the first two axes of an image of this size."""
        return self.height, self.width

    @property
    def pixels(self) -> int:
        """``width * height``."""
        return self.width * self.height

    @classmethod
    def parse(cls, text: str) -> Size:
        """``"320x240"`` → ``Size(320, 240)`` (for command lines)."""
        try:
            w, h = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise ValueError(f"expected WIDTHxHEIGHT such as 320x240, got {text!r}") from None
        if w <= 0 or h <= 0:
            raise ValueError(f"a size is two positive integers, got {text!r}")
        return cls(w, h)

    @classmethod
    def of(cls, image: np.ndarray) -> Size:
        """The size of an ``[H, W, ...]`` image."""
        return cls(int(image.shape[1]), int(image.shape[0]))

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True)
class FrameTransform:
    """Crop + resize from frame pixels to network-input pixels, and back.

    Attributes
    ----------
    x0_px, y0_px
        Top-left corner of the crop window in frame pixels.
    scale_x, scale_y
        Network pixels per frame pixel along each axis (``net_width / crop_width``).
    """

    x0_px: float = 0.0
    y0_px: float = 0.0
    scale_x: float = 1.0
    scale_y: float = 1.0

    def __post_init__(self) -> None:
        if not (self.scale_x > 0 and self.scale_y > 0):
            raise ValueError(f"scales must be positive, got ({self.scale_x}, {self.scale_y})")

    @classmethod
    def identity(cls) -> FrameTransform:
        """No crop, no resize."""
        return cls()

    @classmethod
    def for_crop_resize(
        cls,
        crop_x0_px: int,
        crop_y0_px: int,
        crop_width_px: int,
        crop_height_px: int,
        net_width_px: int,
        net_height_px: int,
    ) -> FrameTransform:
        """The transform for ``resize(frame[y0:y0+h, x0:x0+w], (net_w, net_h))``."""
        if min(crop_width_px, crop_height_px, net_width_px, net_height_px) <= 0:
            raise ValueError("crop and network sizes must be positive")
        return cls(
            float(crop_x0_px),
            float(crop_y0_px),
            net_width_px / crop_width_px,
            net_height_px / crop_height_px,
        )

    @property
    def is_identity(self) -> bool:
        """True when network pixels are frame pixels."""
        return self.x0_px == 0 and self.y0_px == 0 and self.scale_x == 1 and self.scale_y == 1

    def to_frame(self, xy: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Map points ``[..., 2+]`` from network to frame pixels (extra columns are copied).

        ``out`` may be ``xy`` itself for an in-place update on the hot path.
        """
        if out is None:
            out = np.array(xy, dtype=np.float64 if xy.dtype != np.float32 else np.float32)
        elif out is not xy:
            out[...] = xy
        out[..., 0] = (xy[..., 0] + 0.5) / self.scale_x - 0.5 + self.x0_px
        out[..., 1] = (xy[..., 1] + 0.5) / self.scale_y - 0.5 + self.y0_px
        return out

    def then(self, other: FrameTransform) -> FrameTransform:
        """The transform that applies ``self`` (frame → intermediate) then ``other``."""
        # Composition in centre-aligned coordinates c = x + 0.5: c' = (c - (x0 + 0.5) + 0.5) * s.
        sx, sy = self.scale_x * other.scale_x, self.scale_y * other.scale_y
        x0 = self.x0_px + other.x0_px / self.scale_x
        y0 = self.y0_px + other.y0_px / self.scale_y
        return FrameTransform(x0, y0, sx, sy)
