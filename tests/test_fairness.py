"""Which camera is served next: the picking rule itself, with scripted capture times."""

from collections import Counter

import pytest

from livecam.live.fairness import CameraTurns


def serve(turns: CameraTurns, rounds: int, waiting: list[int], start: float = 0.0) -> Counter[int]:
    """``rounds`` picks with every camera in ``waiting`` holding a new frame each round."""
    picked: Counter[int] = Counter()
    for n in range(rounds):
        now = start + n * 0.04
        camera = turns.take({c: now - 0.001 * c for c in waiting})
        assert camera is not None
        picked[camera] += 1
    return picked


def test_the_camera_that_waited_longest_goes_first() -> None:
    turns = CameraTurns(3)
    # Nobody served yet: the oldest newest frame first.
    assert turns.take({0: 5.0, 1: 4.0, 2: 6.0}) == 1
    # Then the cameras never served, oldest frame first.
    assert turns.take({0: 5.1, 1: 5.2, 2: 6.1}) == 0
    assert turns.take({0: 5.3, 1: 5.4, 2: 6.2}) == 2
    # Everyone served: the one whose last frame sent is oldest (camera 1, sent 4.0).
    assert turns.take({0: 7.0, 1: 7.0, 2: 7.0}) == 1
    assert turns.take({0: 7.1, 1: 7.1, 2: 7.1}) == 0


def test_busy_cameras_get_equal_shares_whatever_their_frame_ages() -> None:
    picked = serve(CameraTurns(4), 400, [0, 1, 2, 3])
    assert set(picked.values()) == {100}


def test_an_idle_camera_gives_its_share_to_the_others_and_comes_back_without_a_backlog() -> None:
    turns = CameraTurns(3)
    serve(turns, 30, [0, 1, 2])
    idle = serve(turns, 30, [0, 1], start=10.0)
    assert idle == {0: 15, 1: 15}
    back = serve(turns, 30, [0, 1, 2], start=20.0)
    assert back == {0: 10, 1: 10, 2: 10}


def test_nothing_waiting_picks_nothing() -> None:
    assert CameraTurns(2).take({}) is None


def test_weights_share_the_turns_in_proportion() -> None:
    picked = serve(CameraTurns(3, weights=[2, 1, 1]), 400, [0, 1, 2])
    assert picked == {0: 200, 1: 100, 2: 100}


def test_a_weighted_camera_back_from_idle_does_not_catch_up_on_missed_turns() -> None:
    turns = CameraTurns(2, weights=[1, 1])
    serve(turns, 20, [0])
    back = serve(turns, 20, [0, 1], start=10.0)
    assert back == {0: 10, 1: 10}


@pytest.mark.parametrize("weights", [[1.0], [1.0, 0.0], [1.0, float("nan")]])
def test_bad_weights_are_refused(weights: list[float]) -> None:
    with pytest.raises(ValueError):
        CameraTurns(2, weights=weights)
