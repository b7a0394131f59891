#!/usr/bin/env bash
# Set up livecam and run it. With no arguments: the bundled sample video with the embedded
# offline COCO model. Any arguments are passed to `livecam run` instead, as given: relative
# paths are read from (and written to) the folder you run it from, not the checkout.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
if [ "$#" -eq 0 ]; then
    set -- "$root/sample_videos/vtest.avi"
fi
exec "$root/.venv/bin/livecam" run "$@"
