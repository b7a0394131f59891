#!/usr/bin/env bash
# Set up everything the tests need and run them: system packages (as root, with apt-get),
# the .venv with the test extras, the Roboflow client peers' own venv, then pytest.
# Arguments are passed to pytest, e.g. `scripts/test.sh -k client -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v Xvfb >/dev/null || missing+=(xvfb)
command -v import >/dev/null || missing+=(imagemagick)
command -v xauth >/dev/null || missing+=(xauth)
command -v xwininfo >/dev/null || missing+=(x11-utils)
ldconfig -p 2>/dev/null | grep -q 'libGL\.so\.1' || missing+=(libgl1)
ldconfig -p 2>/dev/null | grep -q 'libXfixes\.so' || missing+=(libxfixes3)
ldconfig -p 2>/dev/null | grep -q 'libturbojpeg\.so' || missing+=(libturbojpeg0)
command -v chromium >/dev/null || missing+=(chromium)
# Network stream tests: ffmpeg publishes, GStreamer's RTSP server (run by the system Python) serves RTSP.
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
/usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null \
    || missing+=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "installing system packages: ${missing[*]}"
        # Wait for another apt or dpkg run (unattended upgrades) instead of failing at once.
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
    else
        echo "warning: missing system packages (${missing[*]}); tests that need them will be skipped" >&2
    fi
fi

scripts/setup.sh '.[test,ray]'
if [ -f tests/peers/setup.sh ]; then
    bash tests/peers/setup.sh
fi
exec .venv/bin/python -m pytest "$@"
