from livecam.balance.window import InFlightWindow


def test_one_request_in_flight_is_not_spaced() -> None:
    pacer = InFlightWindow(1)
    pacer.answered(0.2)
    assert pacer.spacing() == 0.0


def test_k_requests_are_spread_over_the_round_trip() -> None:
    pacer = InFlightWindow(4)
    assert pacer.spacing() == 0.0  # nothing known yet: send at once
    pacer.answered(0.2)
    assert pacer.spacing() == 0.2 / 4


def test_spacing_follows_a_smoothed_round_trip() -> None:
    pacer = InFlightWindow(2)
    pacer.answered(0.2)
    pacer.answered(1.2)
    assert 0.1 < pacer.spacing() < 0.6 / 2 + 1e-9


def test_adaptive_starts_slowly_and_grows_while_answers_stay_fast() -> None:
    pacer = InFlightWindow(32, floor=0.01, adaptive=True)
    assert pacer.spacing() == 0.5
    for _ in range(40):
        pacer.answered(1.0)
    assert pacer.window == 32
    assert pacer.spacing() == 1.0 / 32


def test_adaptive_never_sends_faster_than_the_floor() -> None:
    pacer = InFlightWindow(32, floor=1 / 30, adaptive=True)
    for _ in range(40):
        pacer.answered(0.05)
    assert pacer.spacing() == 1 / 30


def test_adaptive_halves_when_the_server_queues_then_grows_slowly() -> None:
    pacer = InFlightWindow(32, adaptive=True)
    for _ in range(14):
        pacer.answered(1.0)
    assert pacer.window == 16
    pacer.answered(2.0)  # well above the best round trip: requests are waiting
    assert pacer.window == 8
    pacer.answered(1.0)
    assert 8 < pacer.window < 8.2  # one more per round trip, no longer one per answer


def test_refusals_halve_the_window_but_never_below_one() -> None:
    pacer = InFlightWindow(8, adaptive=True)
    for _ in range(10):
        pacer.refused()
    assert pacer.window == 1
    fixed = InFlightWindow(8)
    fixed.refused()
    assert fixed.window == 8
