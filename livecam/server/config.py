"""Server configuration: the frozen value, and the ``livecam serve`` flags that build it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from livecam.detector.bundled import DEFAULT_PRECISION, PRECISIONS, Precision
from livecam.detector.runtime import BACKENDS, DEFAULT_THREADS, Backend
from livecam.errors import ConfigError

MAX_THREADS = 64


@dataclass(frozen=True)
class ServerConfig:
    """How the embedded Roboflow-compatible server runs.

    Attributes:
        host: address to bind; loopback unless the user opens it up.
        port: TCP port; 0 picks a free one.
        model_path: an ONNX detector, or None for the bundled COCO NanoDet.
        classes_path: class names for ``model_path``, one a line.
        model_id: the only ``project/version`` served; other ids get 404.
        api_key: when set, requests must carry it (query, JSON body or Bearer header).
        simulate_latency_ms: a fixed delay before each inference answer; it holds an admitted
            request slot but never a model worker.
        max_body_mb: larger request bodies get 413.
        max_image_pixels: larger images (read from the header, before decoding) get 413.
        allow_image_urls: whether ``image=<url>`` may make the server fetch a URL.
        workers: model instances, i.e. inferences running at once. Two by default: on a 2-core
            machine two detectors keep the cores busy while HTTP, decoding and the other
            request's pre/post-processing run (about +25% requests/s with several clients, see
            BENCHMARKS.md), and a single client is no slower.
        max_pending: inference requests admitted at once (waiting, delayed or running); more get 503.
        max_connections: open connections. At the cap, the connection that has waited longest
            for its client (idle keep-alive or a slow sender) is closed to admit a new one; only
            when every one is being answered is the new one answered 503 and closed.
        socket_timeout_s: the longest a single socket read or write may block.
        header_timeout_s: a request line and headers must arrive in full within this long of the
            connection opening or the previous answer; so it is also the keep-alive idle timeout.
        body_timeout_s: the shortest time allowed for a body to arrive in full.
        min_upload_bytes_per_s: bodies get ``size / min_upload_bytes_per_s`` to arrive when that
            is longer than ``body_timeout_s`` (100 kB/s: a 20 MB body gets 200 s).
        backend: ONNX runtime choice.
        precision: the bundled model's variant (None: ``int8``, the measured default); must be
            None with ``model_path``, which runs as exported.
        threads: onnxruntime intra-op threads per model worker (0: one per core).
    """

    host: str = "127.0.0.1"
    port: int = 9001
    model_path: Path | None = None
    classes_path: Path | None = None
    model_id: str = "coco/1"
    api_key: str | None = None
    simulate_latency_ms: float = 0.0
    max_body_mb: float = 20.0
    max_image_pixels: int = 50_000_000
    allow_image_urls: bool = False
    workers: int = 2
    max_pending: int = 8
    max_connections: int = 64
    socket_timeout_s: float = 30.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    min_upload_bytes_per_s: float = 100_000.0
    backend: Backend = "auto"
    precision: Precision | None = None
    threads: int = DEFAULT_THREADS

    @property
    def max_body_bytes(self) -> int:
        """``max_body_mb`` in bytes."""
        return int(self.max_body_mb * 1024 * 1024)

    def body_timeout(self, size: int) -> float:
        """Seconds a body of ``size`` bytes may take to arrive in full."""
        return max(self.body_timeout_s, size / self.min_upload_bytes_per_s)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``livecam serve`` flags to ``parser`` (read back with :func:`server_config_from_args`)."""
    d = ServerConfig()
    parser.add_argument("--host", default=d.host, help="address to bind (default %(default)s: this machine only)")
    parser.add_argument("--port", type=int, default=d.port, help="TCP port (default %(default)s; 0 = any free)")
    parser.add_argument(
        "--model",
        dest="model_path",
        type=Path,
        default=None,
        metavar="PATH.onnx",
        help="serve this ONNX detector (NanoDet or YOLOv8 layout) instead of the bundled COCO one",
    )
    parser.add_argument(
        "--classes",
        dest="classes_path",
        type=Path,
        default=None,
        metavar="NAMES.txt",
        help="class names for --model, one a line",
    )
    parser.add_argument("--model-id", default=d.model_id, help="the project/version served (default %(default)s)")
    parser.add_argument("--api-key", default=None, help="require this key from every client")
    parser.add_argument(
        "--simulate-latency-ms",
        type=float,
        default=d.simulate_latency_ms,
        metavar="MS",
        help="delay every answer by MS milliseconds (demos of slow networks)",
    )
    parser.add_argument(
        "--max-body-mb",
        type=float,
        default=d.max_body_mb,
        metavar="MB",
        help="largest request body accepted (default %(default)s)",
    )
    parser.add_argument(
        "--allow-image-urls",
        action="store_true",
        help="let clients make the server fetch image=<url> (off: anyone could make it fetch URLs)",
    )
    parser.add_argument(
        "--workers", type=int, default=d.workers, help="model instances running at once (default %(default)s)"
    )
    parser.add_argument(
        "--max-pending",
        type=int,
        default=d.max_pending,
        help="inference requests admitted at once; more are answered 503 (default %(default)s)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=d.backend,
        help="ONNX runtime (auto: onnxruntime, or OpenCV's DNN where onnxruntime cannot be imported)",
    )
    add_precision_argument(parser)
    parser.add_argument(
        "--threads",
        type=int,
        default=d.threads,
        metavar="N",
        help="onnxruntime threads per model worker (default %(default)s: one per core)",
    )


def add_precision_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The ``--precision`` flag of ``serve`` (and of ``run``/``annotate`` for their embedded server)."""
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help=f"the bundled model's variant (default {DEFAULT_PRECISION}: about twice as fast as fp32 on "
        "onnxruntime, same detections within 5 percent; fp16 is no faster than fp32 on CPUs)",
    )


def server_config_from_args(ns: argparse.Namespace) -> ServerConfig:
    """The :class:`ServerConfig` for flags parsed by a parser given :func:`add_serve_arguments`.

    Raises:
        ConfigError: a value out of range.
    """
    checks = {
        "--port": 0 <= ns.port <= 65535,
        "--workers": ns.workers >= 1,
        "--max-pending": ns.max_pending >= 1,
        "--max-body-mb": ns.max_body_mb > 0,
        "--simulate-latency-ms": ns.simulate_latency_ms >= 0,
        "--threads": 0 <= ns.threads <= MAX_THREADS,
    }
    for flag, ok in checks.items():
        if not ok:
            raise ConfigError(f"{flag} is out of range; see livecam serve --help")
    if ns.precision is not None and ns.model_path is not None:
        raise ConfigError(
            f"--precision {ns.precision} chooses a variant of the bundled model; --model {ns.model_path} "
            "runs as exported (leave --precision out)"
        )
    if "/" not in ns.model_id:
        raise ConfigError(f"--model-id {ns.model_id!r} must look like project/version, e.g. coco/1")
    return ServerConfig(
        host=ns.host,
        port=ns.port,
        model_path=ns.model_path,
        classes_path=ns.classes_path,
        model_id=ns.model_id.strip("/"),
        api_key=ns.api_key or None,
        simulate_latency_ms=ns.simulate_latency_ms,
        max_body_mb=ns.max_body_mb,
        allow_image_urls=ns.allow_image_urls,
        workers=ns.workers,
        max_pending=max(ns.max_pending, ns.workers),
        backend=ns.backend,
        precision=ns.precision,
        threads=ns.threads,
    )
