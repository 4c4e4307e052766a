"""The CLI's local temp directory: each run makes its own directory in it,
``<temp-dir>/<run>-XXXXXXXX`` (``mkdir``, mode 0700, never one that already exists), and extracts
its chunk files there.

Others cannot read a 0700 directory; the danger on a shared machine is that someone renames it,
or a directory above it, and puts a link in its place between the moment the run makes it and
the moment a tool reads from it: the chunk files, or what a tool then reads as the chunk, go
where the link points. So the rule is that **nobody but the user and root can rename or replace
an entry of the temp dir or of any directory above it**:

* every directory on the way, from ``/`` down, is opened one at a time with
  ``O_NOFOLLOW | O_DIRECTORY`` and checked on the open descriptor (``fstat``: no window between
  check and use): it must be a directory, not a symbolic link, owned by the user or root, and not
  writable by group or others unless it has the sticky bit (with it only an entry's owner, the
  directory's owner and root may rename or remove the entry). A directory of another user is
  refused even when sticky: its owner may rename anything in it.
* links *above* the temp dir (``/home -> /var/home``) are resolved once, before the walk, and the
  resolved path is the one checked and used from then on; the temp dir itself may not be a link.
* a sticky world-writable directory, ``/tmp`` itself, is accepted as ``--temp-dir``: the run's
  directory is made with ``mkdir`` in the checked descriptor (it fails rather than reuse what
  someone planted), mode 0700, and the sticky bit keeps others from renaming or removing it.
  Refusing ``/tmp`` would refuse the most common choice and protect nothing.
* **the default** (no ``--temp-dir``/``TEMP_DIR``/config value) is
  ``<$TMPDIR, else the system's temp dir>/impala-transfer-<uid>``, made 0700; it must be the
  user's own and private (no group/other access at all): one made by another user first, a link
  put there, or the user's own opened up, is refused, not repaired. Not ``$XDG_RUNTIME_DIR``:
  it is a small tmpfs (logind gives it 10% of RAM) for sockets and the like, removed when the
  user's last session ends, and chunk files are large and outlive a logout with ``nohup``.

Missing directories are made one level at a time, each 0700 (``os.makedirs`` would give the
parents 0777 less the umask: group-writable under a umask of 002). Nothing here changes the mode
or owner of a directory it did not make. The checks run twice: in :func:`check_temp_dir` before
anything is written or contacted (also under ``--validate-config``, which makes nothing), and in
:func:`open_temp_dir` where the run makes its directory.
"""

from __future__ import annotations

import os
import pwd
import stat
import tempfile
from collections.abc import Mapping

from airflow_provider_impala_transfer.core.errors import ConfigError

FIELD = "--temp-dir"
# O_PATH (Linux): a level may be searchable but not readable (a 0711 home directory)
_OPEN = os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_PATH", os.O_RDONLY)


def default_temp_dir(environ: Mapping[str, str]) -> str:
    """``<$TMPDIR>/impala-transfer-<uid>``, or under the system's temp dir without TMPDIR."""
    base = environ.get("TMPDIR") or ""
    if not os.path.isabs(base):
        base = tempfile.gettempdir()
    return os.path.join(os.path.normpath(base), f"impala-transfer-{os.getuid()}")


def resolved(path: str) -> str:
    """``path`` with the links above it resolved; its last component is kept as it is."""
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    return os.path.join(os.path.realpath(parent), name) if name else path


def check_temp_dir(path: str, *, default: bool) -> str:
    """The resolved temp dir, after checking every directory of it that exists; makes nothing."""
    path = resolved(path)
    fd = _walk(path, default=default, make=False)
    if fd is not None:
        os.close(fd)
    return path


def open_temp_dir(path: str, *, default: bool) -> int:
    """A descriptor of the temp dir ``path`` (resolved by :func:`check_temp_dir`), each missing
    level made 0700, each level checked; the caller closes it."""
    fd = _walk(path, default=default, make=True)
    assert fd is not None
    return fd


def _walk(path: str, *, default: bool, make: bool) -> int | None:
    names = [name for name in path.split("/") if name]
    fd = os.open("/", _OPEN)
    try:
        where = "/"
        _check(fd, where, role=_role(path, where, default))
        for name in names:
            where = os.path.join(where, name)
            try:
                child = os.open(name, _OPEN, dir_fd=fd)
            except FileNotFoundError:
                if not make:
                    os.close(fd)
                    return None  # nothing below exists yet: nothing more to check
                try:
                    os.mkdir(name, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass  # made in between by someone: opened and checked like any other
                except OSError as exc:
                    raise ConfigError(FIELD, f"cannot make {where!r}: {exc.strerror}",
                                      "give a directory you can write to") from None
                child = _open(name, fd, where, path, default)
            except OSError:
                child = _open(name, fd, where, path, default)
            os.close(fd)
            fd = child
            _check(fd, where, role=_role(path, where, default))
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open(name: str, parent_fd: int, where: str, path: str, default: bool) -> int:
    try:
        return os.open(name, _OPEN, dir_fd=parent_fd)
    except OSError as exc:
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except OSError:
            st = None
        if st is not None:
            _check_kind(st, where, role=_role(path, where, default))
        raise ConfigError(FIELD, f"cannot open {where!r}: {exc.strerror}", "give a directory you can use") from None


def _check_kind(st: os.stat_result, where: str, *, role: str) -> None:
    """A directory, not a link to one (nor a file) in its place."""
    if stat.S_ISDIR(st.st_mode):
        return
    if stat.S_ISLNK(st.st_mode):
        problem, fix = "is a symbolic link", f"give the directory itself: {os.path.realpath(where)!r}"
    else:
        problem, fix = "is not a directory", "give a directory, or a path that does not exist yet"
    raise ConfigError(FIELD, f"{_named(where, role)} {problem}", _TAKEN_FIX if role == "default" else fix)


def _role(path: str, where: str, default: bool) -> str:
    if where != path:
        return "parent"
    return "default" if default else "given"


def _named(where: str, role: str) -> str:
    return {"parent": f"its parent {where!r}", "default": f"the default {where!r}"}.get(role, repr(where))


_TAKEN_FIX = "have it removed (by its owner or root), or give --temp-dir a directory of your own"


def _check(fd: int, where: str, *, role: str) -> None:
    st = os.fstat(fd)
    _check_kind(st, where, role=role)
    mode = stat.S_IMODE(st.st_mode)
    me = os.getuid()
    named = _named(where, role)
    if role == "default":
        if st.st_uid != me:
            raise ConfigError(FIELD, f"{named} is owned by {_owner(st.st_uid)}, not by you: another user made it, "
                              "so it is not private to you", _TAKEN_FIX)
        if mode & 0o077:
            raise ConfigError(FIELD, f"{named} has mode {mode:04o}, so it is not private to you",
                              f"chmod 700 {where!r}")
        return
    what = "the temp dir" if role == "parent" else "what a run writes in it"
    if st.st_uid not in (me, 0):
        fix = ("give a temp dir below directories only you or root can change, e.g. under your home directory"
               if role == "parent" else
               "give a directory that only you or root can change, e.g. one under your home directory")
        raise ConfigError(FIELD, f"{named} is owned by {_owner(st.st_uid)}, who could rename or replace {what}", fix)
    if mode & 0o022 and not mode & stat.S_ISVTX:
        elsewhere = "a temp dir elsewhere" if role == "parent" else "another directory"
        raise ConfigError(FIELD, f"{named} (mode {mode:04o}) is writable by other users, who could rename or "
                          f"replace {what}", f"chmod go-w {where!r} (or chmod +t, as /tmp has), or give {elsewhere}")


def _owner(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
