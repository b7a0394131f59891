import shutil

import pytest
from xvfb import running_xvfb

from livecam.kiosk.cursor import HiddenCursor

pytestmark = pytest.mark.window


def test_the_pointer_is_hidden_on_an_x_display_and_shown_again_after() -> None:
    if shutil.which("Xvfb") is None:
        pytest.skip("needs Xvfb (scripts/test.sh installs it)")
    with running_xvfb(320, 240) as display:
        with HiddenCursor(display) as cursor:
            assert cursor.hidden
        assert not cursor.hidden


def test_no_x_display_leaves_the_pointer_alone_without_failing() -> None:
    with HiddenCursor(":4242") as cursor:  # nothing listens there
        assert not cursor.hidden
