"""Zone geometry against hand-computed distances."""

import math

import pytest

from realtime_pose.rules.zones import (
    circle_signed_distance,
    point_in_polygon,
    polygon_signed_distance,
    rectangle_signed_distance,
)

RECT = (10.0, 20.0, 50.0, 40.0)  # x0, y0, x1, y1


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (30.0, 30.0, 10.0),  # centre: 10 px to the top and bottom edges
        (12.0, 30.0, 2.0),  # near the left edge
        (10.0, 30.0, 0.0),  # on the border
        (5.0, 30.0, -5.0),  # left of it
        (30.0, 44.0, -4.0),  # below it
        (7.0, 16.0, -5.0),  # off the top-left corner: 3-4-5
    ],
)
def test_rectangle_signed_distance(x, y, expected):
    assert rectangle_signed_distance(x, y, *RECT) == pytest.approx(expected)


def test_circle_signed_distance():
    assert circle_signed_distance(3.0, 4.0, 0.0, 0.0, 10.0) == pytest.approx(5.0)
    assert circle_signed_distance(6.0, 8.0, 0.0, 0.0, 10.0) == pytest.approx(0.0)
    assert circle_signed_distance(0.0, -12.0, 0.0, 0.0, 10.0) == pytest.approx(-2.0)


# An L shape (concave), counter-clockwise in image coordinates.
L_SHAPE = [(0.0, 0.0), (20.0, 0.0), (20.0, 10.0), (10.0, 10.0), (10.0, 30.0), (0.0, 30.0)]


@pytest.mark.parametrize(
    ("x", "y", "inside"),
    [(5.0, 5.0, True), (15.0, 5.0, True), (5.0, 25.0, True), (15.0, 20.0, False), (-1, 5, False)],
)
def test_point_in_concave_polygon(x, y, inside):
    assert point_in_polygon(x, y, L_SHAPE) is inside
    assert point_in_polygon(x, y, L_SHAPE[::-1]) is inside  # winding does not matter


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (5.0, 25.0, 5.0),  # inside the vertical bar, 5 px from both long edges
        (15.0, 8.0, 2.0),  # inside the foot, 2 px above its lower edge y=10
        (15.0, 20.0, -5.0),  # in the notch: 5 px right of the inner edge x=10
        (23.0, 14.0, -5.0),  # off the corner (20, 10): 3-4-5
        (20.0, 5.0, 0.0),  # on an edge
    ],
)
def test_polygon_signed_distance(x, y, expected):
    assert polygon_signed_distance(x, y, L_SHAPE) == pytest.approx(expected)


def test_polygon_matches_rectangle_for_a_rectangle():
    x0, y0, x1, y1 = RECT
    square = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    for x, y in [(30, 30), (12, 25), (60, 50), (7, 16), (10, 39)]:
        assert polygon_signed_distance(x, y, square) == pytest.approx(
            rectangle_signed_distance(x, y, *RECT)
        )
    assert math.isclose(polygon_signed_distance(30, 30, square), 10.0)
