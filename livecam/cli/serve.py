"""``livecam serve``: the embedded Roboflow-compatible server, its flags and their checks."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Mapping
from pathlib import Path

from livecam.cli.common import EXIT_OK, stop_on_signals
from livecam.detector import BACKENDS, DEFAULT_PRECISION, PRECISIONS
from livecam.errors import ConfigError
from livecam.net import parse_allowed_hosts
from livecam.server import ServerConfig, serve

MAX_THREADS = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``livecam serve`` flags (read back with :func:`server_config`)."""
    d = ServerConfig()
    parser.add_argument("--host", default=d.host, help="address to bind (default %(default)s: this machine only)")
    parser.add_argument("--port", type=int, default=d.port, help="TCP port (default %(default)s; 0 = any free)")
    parser.add_argument(
        "--allowed-hosts",
        type=_host_names,
        default=d.allowed_hosts,
        metavar="NAME,...",
        help="Host names answered besides --host and localhost (bound to 0.0.0.0: also any IP address); "
        "other Host headers get 421, so a web page cannot reach the server by rebinding its name; "
        "a leading dot allows subdomains, * allows any",
    )
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
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help=f"the bundled model's variant (default {DEFAULT_PRECISION}: about twice as fast as fp32, "
        "95 percent or more of its detections; fp16 is no faster than fp32 on a CPU)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=d.threads,
        metavar="N",
        help="onnxruntime threads per model worker (default %(default)s: one per core)",
    )


def _host_names(text: str) -> tuple[str, ...]:
    try:
        return parse_allowed_hosts(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def server_config(ns: argparse.Namespace) -> ServerConfig:
    """The :class:`ServerConfig` for flags parsed by a parser given :func:`add_arguments`.

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
    if ns.classes_path is not None and ns.model_path is None:
        raise ConfigError(
            f"--classes {ns.classes_path} names the classes of --model PATH.onnx; the bundled model has its own "
            "(give --model too, or leave --classes out)"
        )
    if "/" not in ns.model_id:
        raise ConfigError(f"--model-id {ns.model_id!r} must look like project/version, e.g. coco/1")
    return ServerConfig(
        host=ns.host,
        port=ns.port,
        allowed_hosts=ns.allowed_hosts,
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


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Serve until SIGINT/SIGTERM; returns the exit status."""
    config = server_config(args)
    stop = threading.Event()
    with stop_on_signals(stop):
        serve(config, stop)
    return EXIT_OK
