"""Make one executable file of a one-dir bundle: packaging/launcher.sh, then the directory as a compressed tar.

Usage: python packaging/assemble.py BUNDLE_DIR OUTPUT [--compression xz|gzip]
xz (the default) makes the file a third smaller than gzip; gzip needs nothing to unpack but what every Debian has
(xz is in Debian's standard set, not in slim container images).
BUNDLE_DIR holds an executable `agentdash` (PyInstaller's one-dir output). The launcher gets the archive's hash
(the cache directory's name), the byte where the archive starts, the number of regular files and the command
that decompresses it. Names are sorted and owners left out, so the hash follows the files' contents and times.
"""

import argparse
import gzip
import hashlib
import io
import lzma
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

LAUNCHER = Path(__file__).with_name("launcher.sh")
DECOMPRESS = {"gzip": "gzip -dc", "xz": "xz -dc -T0"}


def archive(bundle: Path, compression: str) -> tuple[bytes, int]:
    """The bundle's contents (no entry for the directory itself) as a compressed tar; and its regular files."""
    raw, files = io.BytesIO(), 0
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, names in os.walk(bundle):
            dirs.sort()
            for name in sorted(dirs) + sorted(names):
                path = Path(root, name)
                info = tar.gettarinfo(str(path), arcname=str(path.relative_to(bundle)))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if info.isreg():
                    files += 1
                    with path.open("rb") as content:
                        tar.addfile(info, content)
                else:
                    tar.addfile(info)
    if compression == "gzip":
        return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0), files
    if shutil.which("xz"):  # on all cores; each core's block can be unpacked by a thread of its own
        return subprocess.run(
            ["xz", "-9", "-T0", "-c"], input=raw.getvalue(), capture_output=True, check=True
        ).stdout, files
    return lzma.compress(raw.getvalue(), preset=9), files


def assemble(bundle: Path, output: Path, compression: str = "xz") -> dict[str, str | int]:
    if not os.access(bundle / "agentdash", os.X_OK):
        raise SystemExit(f"{bundle}/agentdash is not an executable: not a bundle")
    data, files = archive(bundle, compression)
    values: dict[str, str | int] = {
        "HASH": hashlib.sha256(data).hexdigest()[:16],
        "FILES": files,
        "DECOMPRESS": DECOMPRESS[compression],
        "OFFSET": 0,
    }
    template = LAUNCHER.read_text()
    while True:  # the offset counts its own digits
        header = template
        for key, value in values.items():
            header = header.replace(f"@{key}@", str(value))
        offset = len(header.encode()) + 1
        if values["OFFSET"] == offset:
            break
        values["OFFSET"] = offset
    assert "@" not in header.replace("$@", ""), "a placeholder of launcher.sh was left unfilled"
    partial = output.with_name(output.name + ".partial")
    with partial.open("wb") as out:
        out.write(header.encode())
        out.write(data)
    partial.chmod(0o755)
    partial.replace(output)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--compression", choices=sorted(DECOMPRESS), default="xz")
    options = parser.parse_args()
    values = assemble(options.bundle, options.output, options.compression)
    size = options.output.stat().st_size
    print(f"{options.output}: {size / 1e6:.1f} MB, {values['FILES']} files, cache dir name {values['HASH']}")


if __name__ == "__main__":
    main()
