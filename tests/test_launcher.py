"""The one-file executable's launcher (packaging/launcher.sh, put together by packaging/assemble.py, as
packaging/build does), around a fake bundle: a shell script in place of PyInstaller's program. Runs without
PyInstaller; needs sh, tar and xz."""

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ASSEMBLE = ROOT / "packaging" / "assemble.py"

FAKE_PROGRAM = """#!/bin/sh
here=$(dirname "$0")
echo "marker: $(cat "$here/_internal/marker")"
for arg in "$@"; do echo "arg: $arg"; done
[ "${1:-}" = exit ] && exit "$2"
exit 0
"""


def make_bundle(path: Path, marker: str) -> Path:
    (path / "_internal" / "lib").mkdir(parents=True)
    program = path / "agentdash"
    program.write_text(FAKE_PROGRAM)
    program.chmod(0o755)
    (path / "_internal" / "marker").write_text(marker)
    for i in range(20):
        (path / "_internal" / "lib" / f"module{i}.py").write_text(f"value = {i}\n" * 50)
    # Incompressible bytes, so that unpacking takes long enough for concurrent starts to overlap.
    (path / "_internal" / "lib" / "native.so").write_bytes(os.urandom(3 << 20))
    (path / "_internal" / "lib" / "link.so").symlink_to("native.so")
    return path


def assemble(bundle: Path, output: Path) -> Path:
    subprocess.run([sys.executable, str(ASSEMBLE), str(bundle), str(output)], check=True, capture_output=True)
    return output


@pytest.fixture(scope="module")
def executable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scratch = tmp_path_factory.mktemp("launcher")
    return assemble(make_bundle(scratch / "bundle", "build one"), scratch / "agentdash")


def run(executable: Path, cache: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {"PATH": os.environ["PATH"], "AGENTDASH_CACHE_DIR": str(cache), **(env or {})}
    return subprocess.run([str(executable), *args], env=environment, capture_output=True, text=True, timeout=60)


def unpacked(cache: Path) -> list[Path]:
    """The cache's entries, but for the symlinks naming the complete ones."""
    return sorted(p for p in cache.iterdir() if not p.is_symlink())


def link(cache: Path) -> Path:
    (entry,) = [p for p in cache.iterdir() if p.is_symlink()]
    return entry


def test_file_is_a_shell_script_with_the_archive_behind(executable: Path) -> None:
    data = executable.read_bytes()
    assert data.startswith(b"#!/bin/sh\n")
    assert b"@HASH@" not in data and b"@OFFSET@" not in data and b"@FILES@" not in data
    assert executable.stat().st_mode & stat.S_IXUSR
    offset = int(data.split(b"\noffset=", 1)[1].split(maxsplit=1)[0])
    assert data[offset - 1 : offset + 5] == b"\xfd7zXZ\x00"  # the xz archive starts where the launcher says


def test_first_start_unpacks_and_passes_arguments_and_status(executable: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = run(executable, cache, "serve", "two words", "--flag=*", "")
    assert first.returncode == 0, first.stderr
    assert "unpacking" in first.stderr
    assert first.stdout.splitlines() == ["marker: build one", "arg: serve", "arg: two words", "arg: --flag=*", "arg: "]
    assert link(cache).resolve() == unpacked(cache)[0] and len(unpacked(cache)) == 1
    assert (unpacked(cache)[0] / "_internal" / "lib" / "link.so").is_symlink()
    assert run(executable, cache, "exit", "7").returncode == 7
    assert run(executable, cache, "exit", "0").returncode == 0


def test_later_start_does_not_unpack_again(executable: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert run(executable, cache).returncode == 0
    target = link(cache).resolve()
    before = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in (target, target / "_internal" / "lib" / "native.so")]
    time.sleep(0.05)
    second = run(executable, cache, "again")
    assert second.returncode == 0 and second.stdout.splitlines()[-1] == "arg: again"
    assert "unpacking" not in second.stderr and second.stderr == ""
    assert link(cache).resolve() == target and unpacked(cache) == [target]
    after = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in (target, target / "_internal" / "lib" / "native.so")]
    assert after == before


@pytest.mark.parametrize("damage", ["file removed", "marker removed", "program removed", "link to nothing"])
def test_damaged_cache_is_unpacked_afresh(executable: Path, tmp_path: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    assert run(executable, cache).returncode == 0
    target = link(cache).resolve()
    removed = {
        "file removed": target / "_internal" / "lib" / "module3.py",
        "marker removed": target / ".complete",
        "program removed": target / "agentdash",
    }.get(damage)
    if removed:
        removed.unlink()
    else:
        shutil.rmtree(target)
    again = run(executable, cache, "x")
    assert again.returncode == 0, again.stderr
    assert "unpacking" in again.stderr
    assert again.stdout.splitlines() == ["marker: build one", "arg: x"]
    fresh = link(cache).resolve()
    assert fresh != target and unpacked(cache) == [fresh]  # the damaged copy is gone
    assert (fresh / "_internal" / "lib" / "module3.py").read_text().startswith("value = 3")
    assert "unpacking" not in run(executable, cache).stderr


def test_leftover_temp_dirs_of_killed_unpacks(executable: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert run(executable, cache).returncode == 0
    name = link(cache).name
    shutil.rmtree(cache)
    cache.mkdir()
    recent, stale = cache / f"{name}.recent", cache / f"{name}.stale1"
    for leftover in (recent, stale):
        (leftover / "_internal").mkdir(parents=True)
        (leftover / "agentdash").write_text("#!/bin/sh\necho leftover\n")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    started = run(executable, cache, "y")
    assert started.returncode == 0, started.stderr
    assert "unpacking" in started.stderr and started.stdout.splitlines() == ["marker: build one", "arg: y"]
    assert link(cache).resolve() not in (recent, stale)
    assert recent.exists()  # it may be another start still unpacking
    assert not stale.exists()  # killed long ago: removed


def test_concurrent_first_starts_all_succeed(executable: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    environment = {"PATH": os.environ["PATH"], "AGENTDASH_CACHE_DIR": str(cache)}
    starts = [
        subprocess.Popen([str(executable), f"start {i}"], env=environment, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]  # fmt: skip
    results = [(start.wait(timeout=60), *start.communicate()) for start in starts]
    for i, (code, out, err) in enumerate(results):
        assert code == 0, err
        assert out.splitlines() == ["marker: build one", f"arg: start {i}"]
    assert sum("unpacking" in err for _, _, err in results) >= 2  # they did race for the first unpack
    assert len(unpacked(cache)) == 1 and link(cache).resolve() == unpacked(cache)[0]  # the losers cleaned up
    assert "unpacking" not in run(executable, cache).stderr


def test_new_build_gets_its_own_directory(executable: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert run(executable, cache).stdout.startswith("marker: build one")
    newer = assemble(make_bundle(tmp_path / "bundle2", "build two"), tmp_path / "agentdash")
    started = run(newer, cache, "z")
    assert started.returncode == 0 and "unpacking" in started.stderr
    assert started.stdout.splitlines() == ["marker: build two", "arg: z"]
    assert len(unpacked(cache)) == 2 and len([p for p in cache.iterdir() if p.is_symlink()]) == 2
    old = run(executable, cache)  # the older build keeps its own copy
    assert old.stdout.startswith("marker: build one") and "unpacking" not in old.stderr


def test_no_writable_home_falls_back_to_a_private_temp_dir(executable: Path, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "home"
    not_a_dir.write_text("")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(not_a_dir), "TMPDIR": str(temp)}
    started = subprocess.run([str(executable), "w"], env=env, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    cache = temp / f"agentdash-{os.getuid()}"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700 and len(unpacked(cache)) == 1
    # A name someone else put there first (a symlink to their directory) is refused, not used.
    cache.rename(temp / "elsewhere")
    cache.symlink_to(temp / "elsewhere")
    refused = subprocess.run([str(executable), "w"], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "AGENTDASH_CACHE_DIR" in refused.stderr and refused.stdout == ""


def test_damaged_archive_is_reported_not_run(executable: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "agentdash"
    truncated.write_bytes(executable.read_bytes()[:-100_000])
    truncated.chmod(0o755)
    cache = tmp_path / "cache"
    started = run(truncated, cache)
    assert started.returncode == 1 and "damaged" in started.stderr and started.stdout == ""
    assert not cache.exists() or not any(cache.iterdir())  # nothing half unpacked is left behind


def test_corrupt_archive_is_reported_not_run(executable: Path, tmp_path: Path) -> None:
    data = bytearray(executable.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the incompressible file: tar reads on, only xz's checksum can tell
    corrupt = tmp_path / "agentdash"
    corrupt.write_bytes(bytes(data))
    corrupt.chmod(0o755)
    cache = tmp_path / "cache"
    started = run(corrupt, cache)
    assert started.returncode == 1 and "damaged" in started.stderr and started.stdout == ""
    assert not cache.exists() or not any(cache.iterdir())
