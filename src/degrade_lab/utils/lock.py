"""One writer per output folder: a lock file that names its holder.

``with OutputLock(folder, command):`` holds an exclusive ``flock`` on ``folder/.degrade_lab.lock`` for the
duration and writes into it who holds it (host, pid, start time, command). A second run into the same
folder stops at once with that information. The kernel releases the lock when its process dies (even by
SIGKILL), so a lock file left by a killed run is recognised as stale, named in a message, and taken over; the
temporary files that run left (its tag is in the lock file: :data:`~degrade_lab.utils.io.TEMP_TAG`) are removed then,
and nothing else. The lock file is opened without following links and must be a regular file: a planted link cannot
make a run overwrite another file.
Written by hand: ``filelock`` would serve, but it cannot say who holds a lock or that one was stale.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import stat
import sys
import time
from pathlib import Path

from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import TEMP_TAG, file_mode, remove_stale_temporaries, writable_folder

log = logging.getLogger(__name__)
LOCK_NAME = ".degrade_lab.lock"


def is_launcher_process() -> bool:
    """Whether this process owns the run's folders: not one of the DDP workers that Lightning's launcher
    starts (they set ``LOCAL_RANK``), on the first node, and the first task of a multi-task SLURM job (``srun`` starts
    one process per device; Lightning reads their ranks from ``SLURM_PROCID``) or of ``torchrun`` (``RANK``)."""
    slurm_rank = os.environ.get("SLURM_PROCID", "0") if int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1 else "0"
    ranks = (os.environ.get("LOCAL_RANK", "0"), os.environ.get("NODE_RANK", "0"), os.environ.get("RANK", "0"), slurm_rank)
    return all(int(rank or 0) == 0 for rank in ranks)


def _describe(holder: dict) -> str:
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {when}: "
            f"{holder.get('command', '?')}")


def _read_holder(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, 1 << 16)
    try:
        holder = json.loads(data.decode()) if data.strip() else {}
    except (UnicodeDecodeError, ValueError):
        holder = {"command": data[:200].decode(errors="replace")}
    return holder if isinstance(holder, dict) else {}


class OutputLock:
    """Exclusive use of ``folder`` by this process (a context manager; re-entrant within one process)."""

    _held: dict[Path, int] = {}  # folder -> nesting depth, so a task may lock a folder its caller holds

    def __init__(self, folder: str | Path, command: str | None = None, what: str = "output folder"):
        self.folder = Path(folder).expanduser().resolve()
        self.path = self.folder / LOCK_NAME
        self.command = command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        self.what = what
        self.fd: int | None = None
        self.previous: dict = {}

    def acquire(self) -> OutputLock:
        if self.folder in self._held:
            self._held[self.folder] += 1
            return self
        writable_folder(self.folder, self.what)
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)  # a file system without locks: say so, and go on unprotected
                    log.warning("cannot lock %s (%s); make sure no other run writes there", self.folder, err)
                    self._held[self.folder] = 1
                    return self
                holder = _read_holder(fd)
                os.close(fd)
                raise UserInputError(
                    f"{self.what} '{self.folder}' is in use by another run ({_describe(holder)}); wait for it to "
                    "finish or choose another folder."
                ) from None
            try:  # the holder we waited for may have removed the file: lock the one that is there now
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd
        self.previous = _read_holder(fd)
        if self.previous:
            log.warning("%s '%s' was locked by a run that is no longer running (%s); taking it over.",
                        self.what, self.folder, _describe(self.previous))
            removed = remove_stale_temporaries(self.folder, self.previous.get("temporaries"))
            if removed:
                log.info("removed %d temporary file(s) that the interrupted run left under %s", removed, self.folder)
        record = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), "command": self.command,
                  "temporaries": TEMP_TAG}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(record).encode())
        os.fsync(fd)
        self._held[self.folder] = 1
        return self

    def _open(self) -> int:
        """The lock file, created if absent, never through a link (``O_NOFOLLOW``), and refused unless it is a
        regular file."""
        problem = None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, file_mode())
        except OSError as err:
            if err.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EACCES, errno.EPERM):
                raise
            problem = {errno.ELOOP: "a symbolic link", errno.EISDIR: "a folder"}.get(err.errno, err.strerror)
        else:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                return fd
            os.close(fd)
            problem = "not a regular file"
        raise UserInputError(
            f"the lock file '{self.path}' of {self.what} '{self.folder}' is {problem}, not a lock file that degrade_lab "
            "wrote; it was left as it is. Remove it (or choose another folder) and run again.")

    def release(self) -> None:
        depth = self._held.get(self.folder, 0)
        if depth > 1:
            self._held[self.folder] = depth - 1
            return
        self._held.pop(self.folder, None)
        if self.fd is not None:
            self.path.unlink(missing_ok=True)  # while still holding it: the next writer creates a fresh file
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
