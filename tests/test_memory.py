"""Memory stays flat under API faults: a failed request frees its frame at once, not at the next full GC."""

import gc
import weakref
from collections.abc import Iterator

import numpy as np
import pytest
from faults.servers import CLOSE, HANG, RESET, Answer, FaultServer, always

from livecam.client import ApiConfig, DetectionClient
from livecam.errors import DetectionError


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    """Only reference counting frees objects here, as between two full collections of a long run."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@pytest.mark.parametrize("answer", [RESET, CLOSE, HANG], ids=["reset", "close", "no answer"])
@pytest.mark.usefixtures("no_cyclic_gc")
def test_a_failed_request_frees_the_frame_without_waiting_for_gc(answer: Answer) -> None:
    with FaultServer(always(answer)) as server:
        client = DetectionClient(ApiConfig(server.url, "soak/1", read_timeout=0.3))
        try:
            image = np.zeros((720, 1280, 3), np.uint8)
            freed = weakref.ref(image)
            with pytest.raises(DetectionError):
                client.detect(image)
            del image
            assert freed() is None, "the failed request still holds the frame (a reference cycle)"
        finally:
            client.close()
