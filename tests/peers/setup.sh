#!/usr/bin/env bash
# Create the peer virtual environment with Roboflow's own client packages.
# They pin an OpenCV that conflicts with livecam's, so they live apart from .venv.
# Idempotent: does nothing when the environment is already complete.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.venv-peers"
marker="$venv/.livecam-peers-complete"
if [[ -f "$marker" ]]; then
    echo "peer venv ready: $venv"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "inference-sdk==1.8.*" "roboflow==1.7.*"
"$venv/bin/python" -c "import inference_sdk, roboflow; print('inference-sdk', inference_sdk.__version__, 'roboflow', roboflow.__version__)"
touch "$marker"
echo "peer venv ready: $venv"
