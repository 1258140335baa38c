"""Fixtures shared with the live-loop tests: a marker bundle and a marker video."""

from tests.live.conftest import marker_bundle, marker_video  # noqa: F401 (fixtures)
