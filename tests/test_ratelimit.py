from agentdash.auth import FailureLimiter, client_address


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


def test_a_spray_of_fresh_clients_keeps_the_table_bounded_and_the_newest_clients():
    clock = Clock()
    limiter = FailureLimiter(limit=2, window_s=60, clock=clock, max_clients=3)
    for i in range(5):
        limiter.failed(f"10.0.0.{i}")
        limiter.failed(f"10.0.0.{i}")
        clock.now += 1
    assert len(limiter._failures) == 3
    assert [limiter.retry_after(f"10.0.0.{i}") > 0 for i in range(5)] == [False, False, True, True, True]


def test_a_failing_client_is_kept_before_an_idle_one():
    clock = Clock()
    limiter = FailureLimiter(limit=3, window_s=60, clock=clock, max_clients=2)
    limiter.failed("10.0.0.1")
    limiter.failed("10.0.0.2")
    limiter.failed("10.0.0.1")  # 10.0.0.1 failed most recently: 10.0.0.2 goes first
    limiter.failed("10.0.0.3")
    assert set(limiter._failures) == {"10.0.0.1", "10.0.0.3"}


def test_ipv6_clients_share_a_budget_per_64():
    limiter = FailureLimiter(limit=2, window_s=60, clock=Clock())
    limiter.failed("2001:db8:1:2::1")
    limiter.failed("2001:db8:1:2:ffff::9")
    assert limiter.retry_after("2001:db8:1:2::77") > 0  # same /64
    assert limiter.retry_after("2001:db8:1:3::1") == 0  # the next /64
    limiter.failed("::ffff:192.0.2.1")
    limiter.failed("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") > 0  # an IPv4-mapped address is that IPv4 address


def test_only_real_addresses_reach_the_limiter_and_the_log():
    assert client_address("127.0.0.1") == "127.0.0.1"
    assert client_address(" 2001:DB8::0:1 ") == "2001:db8::1"
    for junk in ("evil\nFAKE LOG LINE", "198.51.100.1, 10.0.0.1", "", None, "testclient"):
        assert client_address(junk) == "unknown"
