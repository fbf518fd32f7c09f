#!/bin/sh
# agentdash, one file: this launcher, then a compressed tar (xz or gzip) of the PyInstaller one-dir bundle.
# The first start unpacks the bundle into a cache directory named by the archive's hash; later starts exec the
# unpacked program straight away (a PyInstaller one-file build unpacks everything again on every start).
# packaging/assemble.py fills in the values below and appends the archive.
# Cache: $AGENTDASH_CACHE_DIR, else $XDG_CACHE_HOME/agentdash, else ~/.cache/agentdash; with no writable home,
# ${TMPDIR:-/tmp}/agentdash-<uid> (owned by this user, mode 700). Remove old builds' directories at will
# while no agentdash from them runs.
set -eu
hash=@HASH@            # sha256 of the archive (its first 16 hex digits): a new build, a new directory
offset=@OFFSET@        # the archive starts at this byte of the file (1-based, as tail -c + counts)
files=@FILES@          # regular files in the bundle: fewer in the cache means some were removed, unpack again
decompress='@DECOMPRESS@'  # what turns the archive back into a tar
self=$0
[ -f "$self" ] && [ -r "$self" ] || { echo "agentdash: cannot read this file ($self) to unpack it" >&2; exit 1; }

private_dir() {  # $1 exists, is a real directory, belongs to this user and is closed to others (a shared /tmp)
  { mkdir -m 700 "$1" 2>/dev/null || [ -d "$1" ]; } && [ ! -L "$1" ] && [ -O "$1" ] && chmod 700 "$1" && [ -w "$1" ]
}
if [ -n "${AGENTDASH_CACHE_DIR:-}" ]; then
  cache=$AGENTDASH_CACHE_DIR
  mkdir -p "$cache" && [ -w "$cache" ] || { echo "agentdash: cannot write to AGENTDASH_CACHE_DIR=$cache" >&2; exit 1; }
else
  cache=${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/agentdash
  if ! { mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ]; }; then
    cache=${TMPDIR:-/tmp}/agentdash-$(id -u)  # no writable home (a service user): per user in the temp dir
    private_dir "$cache" || { echo "agentdash: no cache directory: set AGENTDASH_CACHE_DIR to a writable one" >&2; exit 1; }
  fi
fi
dir=$cache/$hash  # a symlink to the unpacked directory, made only once that directory is complete

complete() {  # the marker written last is there, and no file is missing (Python's bytecode caches aside)
  [ -f "$1/.complete" ] && [ -x "$1/agentdash" ] &&
    [ "$(find "$1/" -type f ! -name .complete ! -path '*/__pycache__/*' | wc -l)" -ge "$files" ]
}

if ! complete "$dir"; then
  if [ -L "$dir" ] || [ -e "$dir" ]; then  # damaged or half removed: take it away, unpack afresh below
    old=$(readlink "$dir" 2>/dev/null || true)
    # Another first start may have replaced it in the meantime: look again just before removing.
    complete "$dir" && exec "$dir/agentdash" "$@"
    if [ -L "$dir" ] && [ "$(readlink "$dir")" = "$old" ]; then rm -f "$dir"; elif [ -d "$dir" ] && [ ! -L "$dir" ]; then rm -rf "$dir"; fi
    case $old in "$hash".*) rm -rf "${cache:?}/$old" ;; esac
  fi
  # Left by an unpack that was killed (a start still unpacking touches its directory within minutes).
  find "$cache/" -maxdepth 1 -type d -name "$hash.*" -mmin +60 -exec rm -rf {} + 2>/dev/null || true
  command -v "${decompress%% *}" >/dev/null 2>&1 || {
    echo "agentdash: unpacking needs ${decompress%% *} (Debian, Ubuntu: apt-get install xz-utils)" >&2; exit 1; }
  new=$(mktemp -d "$cache/$hash.XXXXXX")
  trap '[ -z "$new" ] || rm -rf "$new"' EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  echo "agentdash: unpacking into $cache (once per version) ..." >&2
  # A plain pipe reports only tar's status: the decompressor's own check catches a truncated or corrupt archive.
  { tail -c +"$offset" "$self" | $decompress || : >"$new/.failed"; } | tar -xf - -C "$new" || : >"$new/.failed"
  if [ -e "$new/.failed" ] || ! [ -f "$new/agentdash" ]; then
    echo "agentdash: the archive inside $self is damaged (a partial download?); get it again" >&2
    exit 1
  fi
  if ! [ -x "$new/agentdash" ]; then
    echo "agentdash: $cache does not allow running programs (mounted noexec?): set AGENTDASH_CACHE_DIR" >&2
    exit 1
  fi
  : >"$new/.complete"
  complete "$new" || { echo "agentdash: unpacking into $new left files out (disk full?)" >&2; exit 1; }
  # ln -s is atomic and refuses an existing name: of concurrent first starts one wins, the others use its copy.
  # (-n: a name that is a symlink to a directory is such a name, not a directory to put the link in.)
  if ! ln -sn "$(basename "$new")" "$dir" 2>/dev/null; then
    complete "$dir" || { echo "agentdash: $dir is incomplete; remove it and start again" >&2; exit 1; }
  else
    new=
  fi
  [ -z "$new" ] || rm -rf "$new"
  trap - EXIT HUP INT TERM
fi
exec "$dir/agentdash" "$@"
exit 1
