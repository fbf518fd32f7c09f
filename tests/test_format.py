from agentdash.ui import format as fmt


def test_numbers_for_people():
    assert fmt.count(1234) == "1.2k"
    assert fmt.count(12) == "12"
    assert fmt.count(2.5) == "2.50"
    assert fmt.count(None) == "—"
    assert fmt.money(3.4) == "$3.40"
    assert fmt.money(12_345) == "$12.3k"
    assert fmt.percent(0.875) == "87.5%"
    assert fmt.duration(252) == "4m 12s"
    assert fmt.duration(42) == "42s"
    assert fmt.duration(3 * 3600 + 120) == "3h 02m"
    assert fmt.duration(None) == "—"
