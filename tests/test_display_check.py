"""No usable display: ``run`` and ``kiosk`` exit 2 with what to do, instead of aborting inside Qt (134)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from xvfb import running_xvfb

from livecam.display import display_problem, qt_platforms, x_display_opens

TIMEOUT = 120
ADVICE = "use --headless, or run under a desktop session"


def free_display() -> str:
    """An X display name nothing answers on (no socket file, no abstract socket)."""
    for number in range(55, 200):
        path = f"/tmp/.X11-unix/X{number}"
        if Path(path).exists():
            continue
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect("\0" + path)
            except OSError:
                return f":{number}"
    raise AssertionError("no free X display number")


def livecam(*args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    environment.update({k: v for k, v in env.items() if v is not None})
    return subprocess.run(
        [sys.executable, "-m", "livecam", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X displays are checked on Linux")


@pytest.mark.parametrize("command", [["kiosk", "--source", "synthetic:320x240@10"], ["run", "synthetic:320x240@10"]])
def test_no_display_set_exits_2_with_advice(command: list[str]) -> None:
    out = livecam(*command)
    assert out.returncode == 2, out.stderr
    assert f"no usable display (DISPLAY is not set): {ADVICE}" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "command", [["run", "synthetic:320x240@10", "--max-frames", "5"], ["kiosk", "--source", "synthetic:320x240@10"]]
)
def test_a_display_that_points_nowhere_exits_2_with_advice(command: list[str]) -> None:
    name = free_display()
    out = livecam(*command, DISPLAY=name)
    assert out.returncode == 2, out.stderr
    assert f"no usable display (DISPLAY={name} cannot be opened): {ADVICE}" in out.stderr
    assert "Traceback" not in out.stderr


def test_headless_needs_no_display(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    out = livecam(
        *("run", "synthetic:160x120@30", "--headless", "--max-frames", "3", "--stats-json", str(stats)),
        *("--api-url", "http://127.0.0.1:9", "--model", "a/1"),
        DISPLAY=free_display(),
    )
    assert out.returncode == 0, out.stderr
    assert stats.exists()


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_a_running_x_server_is_usable() -> None:
    with running_xvfb(320, 240) as name:
        assert x_display_opens(name)
        assert display_problem({"DISPLAY": name}) is None
        assert display_problem({"DISPLAY": name, "QT_QPA_PLATFORM": "xcb"}) is None


def refused_tcp_display() -> str:
    for number in range(50, 100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", 6000 + number)) != 0:
                return f"127.0.0.1:{number}"
    raise AssertionError("no refused X port")


@pytest.mark.parametrize(
    ("env", "platform", "problem"),
    [
        ({}, "linux", "DISPLAY is not set"),
        ({"DISPLAY": "  "}, "linux", "DISPLAY is not set"),
        ({"DISPLAY": "junk"}, "linux", "DISPLAY=junk cannot be opened"),
        ({"DISPLAY": "FREE"}, "linux", "DISPLAY=FREE cannot be opened"),
        ({"DISPLAY": "TCP"}, "linux", "DISPLAY=TCP cannot be opened"),
        ({"DISPLAY": "FREE", "QT_QPA_PLATFORM": "offscreen", "QT_QPA_PLATFORM_PLUGIN_PATH": "PLUGINS"}, "linux", None),
        ({"QT_QPA_PLATFORM": "vnc:size=800x600", "QT_PLUGIN_PATH": "PLUGINS/.."}, "linux", None),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", None),
        (
            {"QT_QPA_PLATFORM": "wayland-egl", "QT_QPA_PLATFORM_PLUGIN_PATH": "PLUGINS"},
            "linux",
            "QT_QPA_PLATFORM=wayland-egl but WAYLAND_DISPLAY is not set",
        ),
        ({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}, "linux", "DISPLAY is not set"),
        ({}, "darwin", None),
        ({}, "win32", None),
    ],
)
def test_what_counts_as_a_usable_display(
    tmp_path: Path, env: dict[str, str], platform: str, problem: str | None
) -> None:
    plugins = tmp_path / "platforms"
    plugins.mkdir()
    (plugins / "libqoffscreen.so").touch()
    (plugins / "libqvnc.so").touch()
    (plugins / "libqwayland-egl.so").touch()
    free, tcp = free_display(), refused_tcp_display()
    env = {k: v.replace("FREE", free).replace("TCP", tcp).replace("PLUGINS", str(plugins)) for k, v in env.items()}
    expected = problem.replace("FREE", free).replace("TCP", tcp) if problem else None
    assert display_problem(env, platform) == expected


@pytest.mark.skipif(
    (qt_platforms({}) or ["offscreen"]) != ["xcb"], reason="OpenCV's Qt here is not the pip wheel's (xcb only)"
)
def test_a_qt_platform_opencv_lacks_is_not_usable() -> None:
    problem = "QT_QPA_PLATFORM=offscreen, a platform OpenCV's Qt does not have; it has xcb"
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") == problem
    out = livecam(
        "run", "synthetic:160x120@30", "--max-frames", "3", QT_QPA_PLATFORM="offscreen", DISPLAY=free_display()
    )
    assert out.returncode == 2 and f"no usable display ({problem})" in out.stderr  # Qt itself would abort: 134
