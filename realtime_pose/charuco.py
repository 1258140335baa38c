"""A ChArUco calibration board: anipose's ``board.toml``, and the board as OpenCV draws and
detects it. Shared by the calibration (:mod:`realtime_pose.offline.calibrate`) and the rendered
board views of a virtual rig (:mod:`realtime_pose.sources.charuco_views`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from realtime_pose.calibration import read_toml
from realtime_pose.util.validation import format_validation_error


class CalibrationInputError(ValueError):
    """Inputs that cannot make a calibration; the message names the camera and what to do."""


class BoardSpec(BaseModel):
    """A ChArUco board: anipose's ``board.toml`` (as sleap-anipose writes it).

    ``board_x`` × ``board_y`` squares of ``square_length`` (millimetres by convention: the
    calibration's unit), ArUco markers of ``marker_length`` in the white squares, from OpenCV's
    predefined dictionary of ``dict_size`` markers of ``marker_bits`` × ``marker_bits`` bits.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["charuco"] = "charuco"
    board_x: int = Field(ge=3, description="squares along the board's x (its columns)")
    board_y: int = Field(ge=3, description="squares along the board's y (its rows)")
    square_length: float = Field(gt=0)
    marker_length: float = Field(gt=0)
    marker_bits: Literal[4, 5, 6, 7]
    dict_size: Literal[50, 100, 250, 1000]

    @model_validator(mode="after")
    def _fits(self) -> BoardSpec:
        if self.marker_length >= self.square_length:
            raise ValueError(
                f"marker_length ({self.marker_length}) must be smaller than square_length "
                f"({self.square_length})"
            )
        markers = self.board_x * self.board_y // 2
        if markers > self.dict_size:
            raise ValueError(
                f"a {self.board_x}x{self.board_y} board has {markers} markers, more than the "
                f"{self.dict_size} of its dictionary"
            )
        return self

    @classmethod
    def from_toml(cls, path: Path | str) -> BoardSpec:
        """Read sleap-anipose's ``board.toml`` (``board_x``, ``board_y``, ``square_length``,
        ``marker_length``, ``marker_bits``, ``dict_size``) or anipose's ``config.toml``
        (its ``[calibration]`` table); anything else is refused naming the file and field."""
        path = Path(path)
        data = read_toml(path, "board", CalibrationInputError)
        if isinstance(data.get("calibration"), Mapping):  # anipose's config.toml
            table = data["calibration"]
            size = table.get("board_size", [None, None])
            data = {
                "type": table.get("board_type", "charuco"),
                "board_x": size[0] if len(size) > 0 else None,
                "board_y": size[1] if len(size) > 1 else None,
                "square_length": table.get("board_square_side_length"),
                "marker_length": table.get("board_marker_length"),
                "marker_bits": table.get("board_marker_bits"),
                "dict_size": table.get("board_marker_dict_number"),
            }
            data = {k: v for k, v in data.items() if v is not None}
        kind = str(data.get("type", "charuco")).lower()
        if kind != "charuco" or "marker_length" not in data:
            raise CalibrationInputError(
                f"{path}: calibrate needs a ChArUco board (board_x, board_y, square_length, "
                "marker_length, marker_bits, dict_size); this file describes "
                + ("a checkerboard (no marker_length)" if kind == "charuco" else f"a {kind} board")
            )
        try:
            return cls.model_validate({**data, "type": "charuco"})
        except ValidationError as exc:
            raise CalibrationInputError(format_validation_error(exc, path)) from None

    @property
    def size_mm(self) -> tuple[float, float]:
        """The squares' extent ``(width, height)`` in the board's unit."""
        return self.board_x * self.square_length, self.board_y * self.square_length

    @property
    def n_corners(self) -> int:
        """Inner chessboard corners (the points that are detected)."""
        return (self.board_x - 1) * (self.board_y - 1)

    def corner_points(self) -> np.ndarray:
        """``[N, 3]`` chessboard corners in the board frame, by detector id (OpenCV's layout:
        corner ``i`` at ``((i mod (board_x-1)) + 1, (i div (board_x-1)) + 1, 0) × square``)."""
        i = np.arange(self.n_corners)
        nx = self.board_x - 1
        return np.stack(
            [(i % nx + 1) * self.square_length, (i // nx + 1) * self.square_length, 0.0 * i],
            axis=1,
        )

    def opencv_board(self) -> cv2.aruco.CharucoBoard:
        """The board as OpenCV's ``cv2.aruco.CharucoBoard``."""
        name = f"DICT_{self.marker_bits}X{self.marker_bits}_{self.dict_size}"
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))
        return cv2.aruco.CharucoBoard(
            (self.board_x, self.board_y), self.square_length, self.marker_length, dictionary
        )

    def describe(self) -> str:
        """One line: ``ChArUco 8x11, 24 mm squares, 18.75 mm markers, 4x4_1000``."""
        return (
            f"ChArUco {self.board_x}x{self.board_y}, {self.square_length:g} mm squares, "
            f"{self.marker_length:g} mm markers, {self.marker_bits}x{self.marker_bits}"
            f"_{self.dict_size}"
        )

    def toml_text(self) -> str:
        """The board as sleap-anipose's ``board.toml``."""
        fields = self.model_dump(exclude={"type"})
        return "".join(f"{k} = {v!r}\n" for k, v in fields.items())
