"""Roboflow's upload API: the two calls its own ``roboflow`` package makes for an image and its pre-label.

    api = RoboflowUploadApi(UploadTarget("https://api.roboflow.com", "my-project", key))
    image_id = api.upload_image(Path("a.jpg"), split="train", batch="livecam", tags=(), metadata={})
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

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from livecam import __version__
from livecam.errors import ConfigError, ServiceError
from livecam.redaction import redact

DEFAULT_API_URL = "https://api.roboflow.com"
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_ANSWER = 1 << 20


class UploadError(ServiceError):
    """An upload call failed (``retryable`` for the network, 5xx and 429)."""


class UploadRefused(UploadError):
    """401/403 (the key) or 404 (the project): no other image can succeed either."""


@dataclass(frozen=True)
class UploadTarget:
    """Where images go.

    Attributes:
        api_url: Roboflow's REST API, ``https://api.roboflow.com`` unless told otherwise.
        project: the project's id in its URL (``my-project``); a ``workspace/`` prefix is dropped,
            because the key already names the workspace.
        api_key: the Roboflow key (never printed: ``repr`` hides it).
        connect_timeout, read_timeout: seconds.
    """

    api_url: str
    project: str
    api_key: str = field(repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 120.0

    def __post_init__(self) -> None:
        if not self.api_url.startswith(("http://", "https://")):
            raise ConfigError(f"--api-url must start with http:// or https:// (got {self.api_url!r})")
        project = self.project.strip().strip("/").rsplit("/", 1)[-1]
        if not _PROJECT.match(project):
            raise ConfigError(
                f"--project must be the project's id as in its URL, e.g. my-project (got {self.project!r})"
            )
        object.__setattr__(self, "project", project)
        if not self.api_key:
            raise ConfigError("livecam upload needs a Roboflow API key: --api-key KEY or $ROBOFLOW_API_KEY")


class RoboflowUploadApi:
    """The upload and annotate calls over one keep-alive session. Not shared between threads."""

    def __init__(self, target: UploadTarget, session: requests.Session | None = None) -> None:
        self.target = target
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = f"livecam/{__version__}"
        self._base = f"{target.api_url.rstrip('/')}/dataset/{quote(target.project, safe='')}"

    def close(self) -> None:
        self._session.close()

    def upload_image(
        self, path: Path, *, split: str, batch: str, tags: Sequence[str], metadata: Mapping[str, Any]
    ) -> str:
        """Send one image; returns its Roboflow id (also when the project already had it).

        Raises:
            OSError: the file cannot be read.
            UploadRefused: bad key or unknown project.
            UploadError: anything else (``retryable`` says whether to try again).
        """
        data = path.read_bytes()
        params: list[tuple[str, str]] = [("api_key", self.target.api_key), ("batch", batch)]
        params += [("tag", tag) for tag in tags]
        form = [
            ("name", (None, path.name)),
            ("split", (None, split)),
            ("file", (path.name, data, "image/jpeg")),
            ("metadata", (None, json.dumps(dict(metadata)))),
        ]
        answer = self._post(f"{self._base}/upload", params, files=form)
        if answer.status == 200 and isinstance(answer.body, dict):
            image_id = answer.body.get("id")
            if (answer.body.get("success") or answer.body.get("duplicate")) and isinstance(image_id, str) and image_id:
                return image_id
        raise self._error("uploading " + path.name, answer)

    def save_annotation(self, image_id: str, name: str, text: str, *, batch: str) -> None:
        """Attach a pre-label to an uploaded image, marked as a prediction.

        Raises:
            UploadRefused: bad key or unknown project.
            UploadError: anything else.
        """
        params = [("api_key", self.target.api_key), ("name", name), ("jobName", batch), ("prediction", "true")]
        body = json.dumps({"annotationFile": text, "labelmap": None}).encode("utf-8")
        answer = self._post(
            f"{self._base}/annotate/{quote(image_id, safe='')}",
            params,
            data=body,
            headers={"Content-Type": "application/json"},
        )
        if answer.status == 200 and isinstance(answer.body, dict) and answer.body.get("success"):
            return
        if answer.status == 409 and "already annotated" in _message(answer.body).lower():
            return
        raise self._error("saving the pre-label " + name, answer)

    def _post(self, url: str, params: list[tuple[str, str]], **kwargs: Any) -> _Answer:
        key = self.target.api_key
        try:
            response = self._session.post(
                url, params=params, timeout=(self.target.connect_timeout, self.target.read_timeout), **kwargs
            )
        except requests.Timeout:
            raise UploadError(f"no answer from {self._where()} within the timeout", retryable=True) from None
        except requests.RequestException as exc:
            reason = redact(str(exc), key)
            raise UploadError(f"cannot reach {self._where()} ({_short(reason)})", retryable=True) from None
        with response:
            raw = response.content[:_MAX_ANSWER]
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return _Answer(response.status_code, body, response.headers.get("Retry-After"), raw)

    def _error(self, doing: str, answer: _Answer) -> UploadError:
        status = answer.status
        message = redact(
            _message(answer.body) or answer.raw[:200].decode("utf-8", "replace").strip(), self.target.api_key
        )
        detail = f": {_short(message)}" if message else ""
        if status in (401, 403):
            return UploadRefused(
                f"Roboflow refused the API key (HTTP {status}){detail}; check --api-key or $ROBOFLOW_API_KEY "
                "and that the key's workspace holds the project",
                status,
            )
        if status == 404:
            return UploadRefused(
                f"project {self.target.project!r} not found (HTTP 404){detail}; use the id from the project's URL",
                status,
            )
        retryable = status in _TRANSIENT_STATUS
        return UploadError(
            f"{doing} failed (HTTP {status}){detail}",
            status,
            retryable=retryable,
            retry_after=_retry_after(answer.retry_after) if retryable else None,
        )

    def _where(self) -> str:
        return redact(self.target.api_url, self.target.api_key)


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any
    retry_after: str | None
    raw: bytes


def _message(body: Any) -> str:
    """The server's own words, from ``{"error": {"message": ...}}``, ``{"error": ...}`` or ``{"message": ...}``."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    text = error if isinstance(error, str) else body.get("message")
    return text if isinstance(text, str) else ""


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _retry_after(value: str | None) -> float | None:
    try:
        return None if value is None else min(max(float(value), 0.0), 300.0)
    except ValueError:
        return None
