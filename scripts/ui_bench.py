"""Dashboard page timings in headless Chromium on a year of demo data (issue 3: every page drawn < 1.5 s).

    .venv/bin/python scripts/ui_bench.py                      # fills a fresh data dir with the 365-day demo
    .venv/bin/python scripts/ui_bench.py --data-dir .agentdash/demo   # reuse a filled one (server must be stopped)
    .venv/bin/python scripts/ui_bench.py --days 30 --rounds 3         # quicker

A page counts as drawn when the navigation has loaded, every chart has its canvas and no spinner is
left. The baseline, measured in the same run and browser, is the signed-out page (the frame with no
data). Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import browser_page, chromium_path  # noqa: E402

from agentdash.demo import (  # noqa: E402
    GeneratorConfig,
    generate_days,
    send,
)
from agentdash.testing import ServerProcess  # noqa: E402

PAGES = ["/", "/adoption", "/reliability", "/speed", "/cost", "/human-intervention", "/iteration", "/people", "/teams"]
DRAWN = """() => {
    const charts = [...document.querySelectorAll('.nicegui-echart')];
    const drawn = charts.every(c => c.querySelector('canvas, svg'));
    const busy = document.querySelector('.q-spinner, .q-inner-loading');
    return document.readyState === 'complete' && drawn && !busy && document.querySelector('main, .q-page');
}"""


def fill(server: ServerProcess, days: int) -> None:
    config = GeneratorConfig(days=days)
    stats = send(
        f"{server.ingest_url}/v1/events", (e for day in generate_days(config) for e in day), token=server.ingest_key
    )
    print(f"sent {stats.accepted:,} events for {days} days", file=sys.stderr)
    server.wait_projected(timeout=600)


def own_pages(server: ServerProcess, token: str) -> list[str]:
    """The busiest person's and team's own pages: the demo's ids are known only from its data."""
    pages = []
    for dimension, path in (("user", "/people"), ("team", "/teams")):
        answer = httpx.get(
            f"{server.url}/api/v1/orgs/demo/breakdown/{dimension}", headers={"Authorization": f"Bearer {token}"}
        )
        answer.raise_for_status()
        pages.append(f"{path}/{quote(answer.json()[0]['key'], safe='')}")
    return pages


def time_page(page, url: str) -> float:
    started = time.perf_counter()
    page.goto(url, wait_until="load")
    page.wait_for_function(DRAWN, timeout=30_000)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="a filled data dir to reuse (default: a fresh one)")
    parser.add_argument("--days", type=int, default=365, help="days of demo history for a fresh data dir")
    parser.add_argument("--rounds", type=int, default=5, help="timed visits per page (after one warm-up)")
    args = parser.parse_args()
    if chromium_path() is None:
        sys.exit("needs Debian's chromium (apt-get install chromium)")

    with tempfile.TemporaryDirectory(prefix="agentdash-ui-bench-") as tmp:
        server = ServerProcess(args.data_dir or Path(tmp) / "data").start()
        try:
            if args.data_dir is None:
                fill(server, args.days)
            token = server.token("demo", user="bench-admin")
            range_query = f"?days={365 if args.days >= 365 else 30}"
            with browser_page() as page:
                baseline = [time_page(page, f"{server.url}/") for _ in range(args.rounds + 1)][1:]
                page.goto(f"{server.url}/login?token={token}")
                results = {}
                for path in PAGES + own_pages(server, token):
                    url = f"{server.url}{path}{range_query}"
                    print(f"timing {path}", file=sys.stderr)
                    results[path] = [time_page(page, url) for _ in range(args.rounds + 1)][1:]
        finally:
            server.stop()

    base_p50 = statistics.median(baseline)
    print(
        f"\npage draw times, headless chromium 1280x800, {range_query[1:]}, {args.rounds} visits each after a warm-up"
    )
    print(f"  {'page':22} {'p50 s':>7} {'max s':>7} {'x baseline':>11}  target < 1.5 s")
    print(f"  {'signed-out (baseline)':22} {base_p50:7.2f} {max(baseline):7.2f} {1:11.1f}")
    for path, times in results.items():
        p50 = statistics.median(times)
        met = "yes" if max(times) < 1.5 else "NO"
        print(f"  {path:22} {p50:7.2f} {max(times):7.2f} {p50 / base_p50:11.1f}  {met}")


if __name__ == "__main__":
    main()
