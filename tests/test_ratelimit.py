from agentdash.auth import FailureLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_is_refused_after_the_limit_until_the_window_passes():
    clock = Clock()
    limiter = FailureLimiter(limit=3, window_s=60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1") == 0
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 60
    assert limiter.retry_after("10.0.0.2") == 0  # another client is not affected
    clock.now += 59.5
    assert limiter.retry_after("10.0.0.1") == 1
    clock.now += 0.5
    assert limiter.retry_after("10.0.0.1") == 0


def test_memory_stays_bounded_under_many_clients():
    clock = Clock()
    limiter = FailureLimiter(limit=2, window_s=10, clock=clock, max_clients=100)
    for i in range(100):
        limiter.failed(f"c{i}")
    clock.now += 11
    limiter.failed("newcomer")
    assert len(limiter._failures) == 1
