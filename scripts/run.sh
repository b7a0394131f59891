#!/usr/bin/env bash
# Set up livecam and run it. With no arguments: the bundled sample video with the embedded
# offline COCO model. Any arguments are passed to `livecam run` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ "$#" -eq 0 ]; then
    set -- sample_videos/vtest.avi
fi
exec .venv/bin/livecam run "$@"
