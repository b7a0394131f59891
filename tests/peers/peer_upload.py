"""Upload one image and its pre-label with Roboflow's own ``roboflow`` package, as its users do.

Run by the peer environment's python, with ``API_URL`` pointing at the server to talk to:

    API_URL=http://127.0.0.1:PORT .venv-peers/bin/python tests/peers/peer_upload.py \
        IMAGE ANNOTATION PROJECT SPLIT BATCH TAG METADATA_JSON API_KEY

It calls ``Project.single_upload`` (what ``Project.upload`` does for one file): ``upload_image``
then ``save_annotation`` with ``is_prediction=True``. Prints the result as JSON on stdout.
"""

from __future__ import annotations

import json
import sys


def main(image: str, annotation: str, project: str, split: str, batch: str, tag: str, metadata: str, key: str) -> None:
    from roboflow.core.project import Project

    info = {
        "annotation": project,
        "classes": {},
        "colors": {},
        "created": 0,
        "id": f"peer-workspace/{project}",
        "images": 0,
        "name": project,
        "public": False,
        "splits": {},
        "type": "object-detection",
        "unannotated": 0,
        "updated": 0,
    }
    result = Project(key, info).single_upload(
        image_path=image,
        annotation_path=annotation,
        split=split,
        batch_name=batch,
        tag_names=[tag],
        is_prediction=True,
        metadata=json.loads(metadata),
    )
    sys.stdout.write("\n" + json.dumps({"image": result["image"], "annotation": result["annotation"]}) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:9])
