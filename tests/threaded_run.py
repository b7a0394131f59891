"""A live pipeline's display loop on a thread of its own, for tests that act while it plays."""

from __future__ import annotations

import threading
from typing import Any

from livecam.live.pipeline import LivePipeline


def run_in_thread(pipe: LivePipeline) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``pipe.run()`` on a daemon thread; the dict gets the run's statistics when it returns."""
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(pipe.run().to_json()), name="test-display", daemon=True)
    thread.start()
    return thread, result
