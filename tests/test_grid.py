"""The grid of several cameras: layouts, letterboxed tiles, the selected camera."""

import numpy as np
import pytest

from livecam.live.grid import MAX_CANVAS, GridLayout, GridView, auto_shape


@pytest.mark.parametrize(
    ("cameras", "shape"), [(1, (1, 1)), (2, (2, 1)), (3, (2, 2)), (4, (2, 2)), (5, (3, 2)), (6, (3, 2)), (9, (3, 3))]
)
def test_auto_layouts(cameras: int, shape: tuple[int, int]) -> None:
    assert auto_shape(cameras) == shape


def test_more_than_nine_cameras_get_a_square_grid() -> None:
    cols, rows = auto_shape(12)
    assert cols * rows >= 12 and cols == 4


def test_cells_take_the_largest_source_and_the_canvas_fits_the_limit() -> None:
    layout = GridLayout.fit((2, 2), [(640, 360), (320, 240)])
    assert layout.cell == (640, 360) and layout.size == (1280, 720)
    big = GridLayout.fit((3, 3), [(1920, 1080)])
    assert big.size[0] <= MAX_CANVAS[0] and big.size[1] <= MAX_CANVAS[1]
    assert big.cell[0] % 2 == 0 and big.cell[1] % 2 == 0


def test_tiles_are_letterboxed_into_their_cells() -> None:
    layout = GridLayout(2, 1, (200, 100))
    tall = np.full((100, 50, 3), 255, np.uint8)  # half the cell's height-to-width: bars left and right
    canvas = layout.compose([None, tall])
    assert canvas.shape == (100, 400, 3)
    assert canvas[:, :200].max() == 0  # the empty tile is black
    right = canvas[:, 200:]
    assert right[:, 100].min() == 255  # the picture, centred
    assert right[:, :70].max() == 0 and right[:, 130:].max() == 0  # the bars


def test_one_camera_fills_the_canvas() -> None:
    layout = GridLayout(2, 2, (160, 90))
    picture = layout.single(np.full((90, 160, 3), 200, np.uint8))
    assert picture.shape == (180, 320, 3) and picture.min() == 200


def test_the_view_selects_existing_cameras_only() -> None:
    view = GridView(3)
    assert view.select(2) and view.selected == 2
    assert not view.select(3) and view.selected == 2
    assert view.select(None) and view.selected is None
