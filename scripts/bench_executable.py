"""Measure a built agentdash executable: its size and the time from exec to the first 200 from /healthz.

Usage: .venv/bin/python scripts/bench_executable.py dist/agentdash [--runs 3] [--data-dir DIR]
Without --data-dir each run starts on a new empty data dir. The first run starts with an empty unpack cache
(a new AGENTDASH_CACHE_DIR), the later runs reuse it, so the first start and the later starts are reported apart.
"""

import argparse
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used (Linux), which a busy machine inflates less than wall time."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def time_to_healthz(command: list[str], data_dir: str, env: dict[str, str]) -> tuple[float, float]:
    """Start `command serve --dev`, poll /healthz every 20 ms, stop it; return seconds from exec to the 200,
    and the CPU seconds the server had used by then (the launcher execs the program: the same process)."""
    port, ingest_port = free_port(), free_port()
    args = [*command, "serve", "--dev", "--data-dir", data_dir, "--port", str(port), "--ingest-port", str(ingest_port)]
    started = time.perf_counter()
    server = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ingest_port}/healthz", timeout=5) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - started, cpu_seconds(server.pid)
            except (urllib.error.URLError, ConnectionError):
                pass
            if server.poll() is not None:
                raise SystemExit(f"{shlex.join(args)} exited with {server.returncode} before /healthz answered")
            if time.perf_counter() - started > 120:
                raise SystemExit("no /healthz within 120 s")
            time.sleep(0.02)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("executable", help="the executable, or a command such as '.venv/bin/agentdash'")
    parser.add_argument("--runs", type=int, default=3, help="later starts measured after the first")
    parser.add_argument("--data-dir", help="serve this data dir (e.g. a year of demo data); default: empty ones")
    options = parser.parse_args()
    command = shlex.split(options.executable)
    if os.path.isfile(command[0]):
        print(f"size: {os.path.getsize(command[0]) / 1e6:.1f} MB  ({command[0]})")
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "AGENTDASH_CACHE_DIR": os.path.join(scratch, "cache")}  # the launcher's unpack cache
        times = []
        for run in range(options.runs + 1):
            data_dir = options.data_dir or tempfile.mkdtemp(dir=scratch)
            seconds, cpu = time_to_healthz(command, data_dir, env)
            times.append(seconds)
            label = "first start" if run == 0 else "later start"
            print(f"{label}: {seconds:.2f} s to /healthz ({cpu:.2f} s of CPU)", flush=True)
    later = sorted(times[1:])
    if later:
        print(f"later starts: median {later[len(later) // 2]:.2f} s, best {later[0]:.2f} s, worst {later[-1]:.2f} s")


if __name__ == "__main__":
    main()
