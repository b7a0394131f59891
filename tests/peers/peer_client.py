"""Ask livecam's server for detections through one of Roboflow's own client packages.

Run by the peer environment's python (tests/peers/setup.sh), not livecam's:

    .venv-peers/bin/python tests/peers/peer_client.py MODE API_URL IMAGE_PATH API_KEY

MODE is ``sdk`` (inference-sdk, its default mode), ``sdk-v0`` (inference-sdk after
``select_api_v0()``) or ``roboflow`` (roboflow-python's ObjectDetectionModel). Prints the
response JSON on stdout.
"""

from __future__ import annotations

import json
import sys


def main(mode: str, api_url: str, image_path: str, api_key: str) -> None:
    if mode in ("sdk", "sdk-v0"):
        from inference_sdk import InferenceHTTPClient

        client = InferenceHTTPClient(api_url=api_url, api_key=api_key)
        if mode == "sdk-v0":
            client.select_api_v0()
        result = client.infer(image_path, model_id="coco/1")
    elif mode == "roboflow":
        from roboflow.models.object_detection import ObjectDetectionModel

        # roboflow 1.7 splits the id as workspace/project/version and posts to {local}{project}/{version}.
        model = ObjectDetectionModel(api_key, "livecam/coco/1", local=api_url.rstrip("/") + "/")
        result = model.predict(image_path).json()
    else:
        raise SystemExit(f"unknown mode {mode!r}; use sdk, sdk-v0 or roboflow")
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:5])
