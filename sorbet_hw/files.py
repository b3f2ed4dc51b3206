"""What the tool writes, replaces and reads, made safe against hostile input.

- **Atomic files.** :func:`atomic_write` and :func:`atomic_path` write into a uniquely named
  hidden sibling and rename it into place: a crash, a kill or a second writer never leaves a
  half-written file under the final name, and two writers never share a temporary file.
- **Directories replaced only when ours.** :func:`staged_directory` builds an output directory
  in a fresh hidden sibling and swaps it in whole. An existing directory is replaced only if
  it is empty or carries :data:`MARKER` (the tool created it; the marker lists the files the
  tool wrote there); any other non-empty directory is refused unless ``force``, and then the
  tool adds its files to it, deleting nothing. Files a user added inside a directory of ours
  are carried over into its replacement, never deleted. :func:`claim_directory` applies the
  same rule to a directory a command writes into file by file (a sweep, a training run).
- **Modes.** Outputs get the modes the user's umask gives (0666 and 0777 less the umask),
  not the private modes of temporary files.
- **Locks.** :func:`locked` takes an exclusive lock per output location (``filelock``); a
  second process waits for it with a message.
- **Bounded reads.** :func:`read_npz` reads the header (shape and dtype) of every array of an
  ``.npz`` before loading anything, and refuses object arrays and files whose arrays would
  exceed a limit, so a small compressed file cannot inflate to gigabytes.
- **Fingerprints.** :func:`file_digest` is the SHA-256 of a file's content (stage keys,
  provenance in outputs, which carry file names and hashes, never absolute paths).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

MARKER = ".sorbet-hw"                   # in every directory the tool made and may replace
NPZ_LIMIT_BYTES = 512 << 20             # decoded size of one .npz (vectors, checkpoints)
NPZ_MAX_ARRAYS = 4096


class OutputError(RuntimeError):
    """An output location the tool refuses to write (not its own, or not a directory)."""


class FileFormatError(ValueError):
    """A data file is damaged, too large, or not of the expected kind; ``reason`` says what,
    without the path (for callers that name the file themselves)."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a unique temporary sibling; returns ``path``."""
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: Path):
    """A temporary path to write ``path``'s content to; renamed onto ``path`` when the block
    ends normally, removed when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise OutputError(f"{path} is a directory: name a file to write")
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())                # mkstemp's 0600 is for the temporary only
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _marker(directory: Path) -> dict | None:
    record = read_record(Path(directory) / MARKER)
    return record if record is not None and record.get("tool") == "sorbet-hw" else None


def tool_files(directory: Path) -> set[str] | None:
    """The files (relative paths) sorbet-hw wrote in a directory of its own, or None if the
    marker does not list them (every file but the marker then counts as the tool's)."""
    marker = _marker(directory)
    files = marker.get("files") if marker else None
    return set(files) if isinstance(files, list) else None


def foreign_files(directory: Path) -> list[str]:
    """Files in one of the tool's directories that the tool did not write there."""
    directory = Path(directory)
    ours = tool_files(directory)
    if ours is None:
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")
                  if (p.is_file() or p.is_symlink()) and p.name != MARKER
                  and str(p.relative_to(directory)) not in ours)


def is_ours(directory: Path) -> bool:
    """The directory carries the marker, or is an export or report written before markers
    existed, holding exactly what one holds (a manifest and the files it lists; a page and
    its plots), so that an upgrade finds its build. A directory with anything else in it,
    such as one an export was --forced into, is never taken for ours."""
    directory = Path(directory)
    if (directory / MARKER).is_file():
        return True
    try:
        entries = {p.name for p in directory.iterdir()}
        if "manifest.json" in entries:
            manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
            listed = {str(i["file"]) for i in manifest["instances"]}
            return manifest["format"] == "sorbet-hw-export" and entries == {"manifest.json"} | listed
        if "index.html" in entries and all(e == "index.html" or e.endswith(".png") for e in entries):
            with open(directory / "index.html", encoding="utf-8", errors="replace") as f:
                return "<title>sorbet-hw report</title>" in f.read(4096)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        pass
    return False


def check_output_directory(out: Path, force: bool = False) -> None:
    """Raise :class:`OutputError` unless ``out`` may receive a staged directory."""
    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputError(f"{out} exists and is not a directory: choose another output")
    if out.is_dir() and not force and not is_ours(out) and any(out.iterdir()):
        raise OutputError(f"{out} is a non-empty directory that sorbet-hw did not create: "
                          f"choose a new or empty one, or pass --force to add files to it "
                          f"(nothing in it is deleted)")


@contextlib.contextmanager
def staged_directory(out: Path, *, kind: str, force: bool = False):
    """Yield a fresh hidden sibling of ``out`` to fill; when the block ends normally it
    becomes ``out`` (see the module docstring for what may be replaced)."""
    out = Path(os.path.abspath(out))
    if out.parent == out:
        raise OutputError(f"{out} is a filesystem root: choose a directory to write into")
    check_output_directory(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    os.chmod(tmp, 0o777 & ~_umask())                # mkdtemp's 0700 is for the temporary only
    try:
        yield tmp
        check_output_directory(out, force)          # the directory may have changed meanwhile
        if out.is_dir() and not is_ours(out) and any(out.iterdir()):
            for item in sorted(tmp.iterdir()):      # --force: add our files, delete nothing
                os.replace(item, out / item.name)
            tmp.rmdir()
            return
        written = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        (tmp / MARKER).write_text(json.dumps({"tool": "sorbet-hw", "kind": kind,
                                              "files": written}) + "\n")
        if not out.exists():
            os.rename(tmp, out)
            return
        # A user's files inside our directory go over to its replacement, where they were.
        kept = foreign_files(out)
        clash = [f for f in kept if (tmp / f).exists()]
        if clash:
            raise OutputError(f"{out / clash[0]} was not written by sorbet-hw and the new "
                              f"{kind} has a file of that name: move it, or choose another "
                              f"output directory")
        for name in kept:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(out / name, tmp / name)
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
        os.rmdir(old)
        os.rename(out, old)                          # ours or empty: swapped out whole
        os.rename(tmp, out)
        if is_ours(old):
            shutil.rmtree(old)
        else:
            os.rmdir(old)                            # was empty; fails loudly if not
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)       # made by mkdtemp above: ours alone
        raise


def claim_directory(out: Path, *, kind: str, force: bool, writes: tuple[str, ...],
                    signs: tuple[str, ...] = ()) -> bool:
    """Make ``out`` a directory a command writes ``writes`` (names at its top) into, file by
    file: a new or empty directory becomes the tool's (its marker is written); one with the
    marker is the tool's already, and so is one made before markers existed, holding only
    names from ``writes`` and one of ``signs`` (what only the tool makes, such as a training
    checkpoint: a user's ``results.csv`` alone is no sign). Any other
    non-empty directory is refused, unless ``force``: then the command writes beside the
    files there, and a file there with one of ``writes``' names is refused by name, since
    it is not the tool's to overwrite. Returns whether ``out`` is the tool's."""
    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputError(f"{out} exists and is not a directory: choose another output")
    entries = {p.name for p in out.iterdir() if not (p.name.startswith(".") and
               p.name.endswith(".partial"))} if out.is_dir() else set()   # a killed write's
    if _marker(out) is not None:
        return True
    if not entries or (entries <= set(writes) and entries & set(signs)):
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / MARKER, json.dumps({"tool": "sorbet-hw", "kind": kind}) + "\n")
        return True
    if not force:
        raise OutputError(f"{out} is a non-empty directory that sorbet-hw did not create: choose "
                          f"a new or empty one, or pass --force to write beside its files "
                          f"(nothing in it is deleted or overwritten)")
    clash = sorted(entries & set(writes))
    if clash:
        raise OutputError(f"{out} already holds {', '.join(clash)}, not written by sorbet-hw: "
                          f"move {'them' if len(clash) > 1 else 'it'} or choose another directory "
                          f"(--force never overwrites a file sorbet-hw did not write)")
    return False


_LOCKS: dict[str, object] = {}


@contextlib.contextmanager
def locked(location: Path, what: str | None = None):
    """Hold an exclusive lock on output ``location`` (a file or directory, existing or not):
    the lock file is its hidden sibling ``.NAME.lock``. Re-entrant within a process; another
    process waits, after one message on stderr."""
    from filelock import FileLock, Timeout
    location = Path(os.path.abspath(location))
    location.parent.mkdir(parents=True, exist_ok=True)
    lock_path = location.parent / f".{location.name}.lock"
    lock = _LOCKS.get(str(lock_path))
    if lock is None:
        lock = _LOCKS[str(lock_path)] = FileLock(lock_path, is_singleton=True)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"sorbet-hw: {what or location} is in use by another sorbet-hw process; waiting "
              f"for it to finish", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def read_record(path: Path) -> dict | None:
    """A JSON object the tool wrote (a finished result it may reuse), or None when it is
    absent, unreadable or damaged: such a record is redone, never trusted or fatal."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def file_digest(path: Path) -> str:
    """SHA-256 of the file's content (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def describe_file(path: Path) -> dict:
    """How an output names an input file: its name and content hash, no absolute path."""
    return {"name": Path(path).name, "sha256": file_digest(path)[:16]}


def npz_headers(path: Path, *, limit_bytes: int = NPZ_LIMIT_BYTES) -> dict[str, tuple]:
    """``{name: (shape, dtype)}`` of every array in an .npz, read from the headers alone;
    raises :class:`FileFormatError` for anything malformed or over ``limit_bytes`` decoded."""
    path = Path(path)
    headers, total = {}, 0
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            if len(members) > NPZ_MAX_ARRAYS:
                raise FileFormatError(f"{path} holds {len(members)} entries (limit "
                                      f"{NPZ_MAX_ARRAYS}): not a sorbet-hw file")
            for info in members:
                if not info.filename.endswith(".npy"):
                    raise FileFormatError(f"{path}: entry {info.filename!r} is not a .npy array")
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(f)
                if dtype.hasobject:
                    raise FileFormatError(f"{path}: array {info.filename[:-4]!r} holds Python "
                                          f"objects, which sorbet-hw never loads")
                total += int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                if total > limit_bytes:
                    raise FileFormatError(
                        f"{path}: its arrays would take over {limit_bytes >> 20} MiB in memory "
                        f"(array {info.filename[:-4]!r} has shape {shape}); the limit for a "
                        f"sorbet-hw .npz is {limit_bytes >> 20} MiB")
                headers[info.filename[:-4]] = (shape, dtype)
    except FileFormatError:
        raise
    except MemoryError:
        raise
    except Exception as e:           # noqa: BLE001 -- any failure to parse untrusted bytes
        #                              (zip, zlib, struct, header syntax) is a malformed file
        raise FileFormatError(f"{path} is not a valid .npz file ({_short(e)})",
                              f"not a valid .npz file: {_short(e)}") from None
    return headers


def read_npz(path: Path, *, limit_bytes: int = NPZ_LIMIT_BYTES) -> dict[str, np.ndarray]:
    """Every array of an .npz, after :func:`npz_headers` has bounded them; no pickles."""
    npz_headers(path, limit_bytes=limit_bytes)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except MemoryError:
        raise
    except Exception as e:           # noqa: BLE001 -- as in npz_headers
        raise FileFormatError(f"{path} is not a valid .npz file ({_short(e)})",
                              f"not a valid .npz file: {_short(e)}") from None


def read_npy(path: Path, *, limit_bytes: int = NPZ_LIMIT_BYTES) -> np.ndarray:
    """A .npy array, its header checked (size, no objects) before the data is read."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read(f)
    except MemoryError:
        raise
    except Exception as e:           # noqa: BLE001 -- as in npz_headers
        raise FileFormatError(f"{path} is not a valid .npy file ({_short(e)})") from None
    if dtype.hasobject:
        raise FileFormatError(f"{path} holds Python objects, which sorbet-hw never loads")
    size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if size > limit_bytes:
        raise FileFormatError(f"{path}: its array of shape {shape} would take {size >> 20} MiB; "
                              f"the limit is {limit_bytes >> 20} MiB")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise FileFormatError(f"{path} is not a valid .npy file ({_short(e)})") from None


def _short(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:160]
