"""Server configuration: the frozen value every part of the embedded server reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from livecam.detector.bundled import Precision
from livecam.detector.runtime import DEFAULT_THREADS, Backend


@dataclass(frozen=True)
class ServerConfig:
    """How the embedded Roboflow-compatible server runs.

    Attributes:
        host: address to bind; loopback unless the user opens it up.
        allowed_hosts: ``Host`` names answered besides ``host``, localhost and (bound to every
            interface) literal IP addresses; others get 421 (:class:`~livecam.net.HostCheck`).
        port: TCP port; 0 picks a free one.
        model_path: an ONNX detector, or None for the bundled COCO NanoDet.
        classes_path: class names for ``model_path``, one a line.
        model_id: the only ``project/version`` served; other ids get 404.
        api_key: when set, requests must carry it (query, JSON body or Bearer header).
        simulate_latency_ms: a fixed delay before each inference answer; it holds an admitted
            request slot but never a model worker.
        max_body_mb: larger request bodies get 413. All requests together hold at most
            :attr:`max_body_bytes_in_flight`; a body that would go over gets 503 before it is read.
        max_image_pixels: larger images (read from the header, before decoding) get 413. All
            requests together decode at most :attr:`max_pixels_in_flight`; more get 503.
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
    allowed_hosts: tuple[str, ...] = ()
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

    @property
    def max_body_bytes_in_flight(self) -> int:
        """Body bytes all requests may hold at once: four bodies of the largest size (80 MB by default)."""
        return 4 * self.max_body_bytes

    @property
    def max_pixels_in_flight(self) -> int:
        """Decoded pixels all requests may hold at once: two images of the largest size.

        Two, not more: 50 Mpx decode to 150 MB each, and the two model workers seldom need more.
        """
        return 2 * self.max_image_pixels

    def body_timeout(self, size: int) -> float:
        """Seconds a body of ``size`` bytes may take to arrive in full."""
        return max(self.body_timeout_s, size / self.min_upload_bytes_per_s)
