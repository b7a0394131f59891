"""Roboflow's upload API: the two calls its own ``roboflow`` package makes for an image and its pre-label.

    api = RoboflowUploadApi(UploadTarget("https://api.roboflow.com", "my-project", key), stop=stop)
    image_id = api.upload_image("a.jpg", jpeg, split="train", batch="livecam", tags=(), metadata={})
    api.save_annotation(image_id, "a.xml", xml_text, batch="livecam")

1. ``POST {api_url}/dataset/{project}/upload?api_key=KEY&batch=B&tag=T`` with a multipart form:
   ``name``, ``split``, ``file`` (the JPEG) and ``metadata`` (JSON). The answer is
   ``{"success": true, "id": ID}``, or ``{"duplicate": true, "id": ID}`` when the project
   already holds the same image: uploading an image twice never stores it twice.
2. ``POST {api_url}/dataset/{project}/annotate/{ID}?api_key=KEY&name=a.xml&jobName=B&prediction=true``
   with ``{"annotationFile": TEXT, "labelmap": null}``; ``prediction=true`` marks the boxes as
   a model's pre-label for review, not ground truth. A 409 "already annotated" means done.

Errors say whether trying again can help; none contains the key.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from livecam import __version__
from livecam.errors import ConfigError, ServiceError
from livecam.http import Answer, ErrorKinds, Transport, join_path, new_session, server_message
from livecam.redaction import redact

DEFAULT_API_URL = "https://api.roboflow.com"
MAX_ANSWER_BYTES = 1 << 20
"""Roboflow answers these calls with a few hundred bytes; a longer answer is refused unread."""
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class UploadError(ServiceError):
    """An upload call failed (``retryable`` for the network, 5xx and 429)."""


class UploadRefused(UploadError):
    """401/403 (the key) or 404 (the project): no other image can succeed either."""


_KINDS = ErrorKinds.plain(
    UploadError,
    UploadRefused,
    key_hint="check --api-key or $ROBOFLOW_API_KEY, and that the key's workspace holds the project",
    not_found_hint="use the id from the project's URL",
)


@dataclass(frozen=True)
class UploadTarget:
    """Where images go.

    Attributes:
        api_url: Roboflow's REST API, ``https://api.roboflow.com`` unless told otherwise.
        project: the project's id in its URL (``my-project``); a ``workspace/`` prefix is dropped,
            because the key already names the workspace.
        api_key: the Roboflow key (never printed: ``repr`` hides it).
        connect_timeout: seconds to connect.
        read_timeout: the most seconds one read or write waits for Roboflow.
        total_timeout: the most seconds one call takes in all, however the server trickles.
    """

    api_url: str
    project: str
    api_key: str = field(repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    total_timeout: float = 300.0

    def __post_init__(self) -> None:
        if not self.api_url.startswith(("http://", "https://")):
            raise ConfigError(f"--api-url must start with http:// or https:// (got {redact(self.api_url)!r})")
        project = self.project.strip().strip("/").rsplit("/", 1)[-1]
        if not _PROJECT.match(project):
            raise ConfigError(
                f"--project must be the project's id as in its URL, e.g. my-project (got {self.project!r})"
            )
        object.__setattr__(self, "project", project)
        if not self.api_key:
            raise ConfigError("livecam upload needs a Roboflow API key: --api-key KEY or $ROBOFLOW_API_KEY")
        if min(self.connect_timeout, self.read_timeout, self.total_timeout) <= 0:
            raise ConfigError("timeouts must be positive")


class RoboflowUploadApi:
    """The upload and annotate calls over one keep-alive session. Not shared between threads.

    ``stop`` (the run's stop event) ends a call in progress at once with
    :class:`~livecam.http.CallInterrupted`; ``session`` is the transport seam.
    """

    def __init__(
        self, target: UploadTarget, session: requests.Session | None = None, stop: threading.Event | None = None
    ) -> None:
        self.target = target
        self._transport = Transport(
            dataclasses.replace(_KINDS, missing=f"project {target.project!r}"),
            where=redact(target.api_url, target.api_key),
            secrets=(target.api_key,),
            session=session or new_session(pool_size=1),
            connect_timeout=target.connect_timeout,
            read_timeout=target.read_timeout,
            total_timeout=target.total_timeout,
            max_answer=MAX_ANSWER_BYTES,
            stop=stop,
        )
        self._transport.session.headers["User-Agent"] = f"livecam/{__version__}"
        self._dataset = f"dataset/{quote(target.project, safe='')}"

    def close(self) -> None:
        self._transport.close()

    def upload_image(
        self, name: str, data: bytes, *, split: str, batch: str, tags: Sequence[str], metadata: Mapping[str, Any]
    ) -> str:
        """Send one image (``data``, the JPEG named ``name``); returns its Roboflow id (also when
        the project already had it).

        Raises:
            UploadRefused: bad key or unknown project.
            UploadError: anything else (``retryable`` says whether to try again).
            CallInterrupted: the stop event was set.
        """
        params: list[tuple[str, str]] = [("api_key", self.target.api_key), ("batch", batch)]
        params += [("tag", tag) for tag in tags]
        form = [
            ("name", (None, name)),
            ("split", (None, split)),
            ("file", (name, data, "image/jpeg")),
            ("metadata", (None, json.dumps(dict(metadata)))),
        ]
        where = self._where(f"uploading {name}")
        answer = self._transport.post(
            join_path(self.target.api_url, f"{self._dataset}/upload"), params=params, where=where, files=form
        )
        body = answer.json()
        if answer.status == 200 and isinstance(body, dict):
            image_id = body.get("id")
            if (body.get("success") or body.get("duplicate")) and isinstance(image_id, str) and image_id:
                return image_id
        raise self._error(answer, where)

    def save_annotation(self, image_id: str, name: str, text: str, *, batch: str) -> None:
        """Attach a pre-label to an uploaded image, marked as a prediction.

        Raises:
            UploadRefused: bad key or unknown project.
            UploadError: anything else.
            CallInterrupted: the stop event was set.
        """
        params = [("api_key", self.target.api_key), ("name", name), ("jobName", batch), ("prediction", "true")]
        body = json.dumps({"annotationFile": text, "labelmap": None}).encode("utf-8")
        where = self._where(f"saving the pre-label {name}")
        answer = self._transport.post(
            join_path(self.target.api_url, f"{self._dataset}/annotate/{quote(image_id, safe='')}"),
            params=params,
            where=where,
            data=body,
            headers={"Content-Type": "application/json"},
        )
        reply = answer.json()
        if answer.status == 200 and isinstance(reply, dict) and reply.get("success"):
            return
        if answer.status == 409 and "already annotated" in server_message(answer.body).lower():
            return
        raise self._error(answer, where)

    def _where(self, doing: str) -> str:
        return f"{self._transport.where} ({doing})"

    def _error(self, answer: Answer, where: str) -> UploadError:
        if answer.status >= 400:
            error = self._transport.error(answer, where)
            assert isinstance(error, UploadError)
            return error
        message = server_message(answer.body, (self.target.api_key,))
        detail = f": {message}" if message else ""
        return UploadError(f"{where}: unexpected answer (HTTP {answer.status}{detail})", answer.status)
