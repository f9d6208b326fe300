"""The spool: usage records that could not reach the ledger, kept in a small append-only file until it answers.

One file per process and ledger, in ``directory`` (default: ``$CFGATEWAY_SPOOL_DIR``, else
``$XDG_CACHE_HOME/cfgateway/spool`` or ``~/.cache/cfgateway/spool``, else ``<tmp>/cfgateway-spool-<uid>``)::

    {ledger key}.{pid}.{random}.live.jsonl      appended to while the ledger is down
    {ledger key}.{pid}.{random}.r000001.jsonl   sealed for replay, replayed oldest first

Each line is ``{"r": <record dict>, "res": <reservation id or null>}``. A replay seals the live file (new
records go to a new one), settles the sealed files in order, in batches, and deletes each once it is all in;
when the ledger fails half-way the rest is written back and waits for the next try. Replays are idempotent:
every record carries a ``record_id`` that the ledger counts once. Files left by a process that died
(``kill -9``) are adopted — renamed, so one process takes each — and replayed by the next process that opens
a spool on the same ledger. The spool is bounded (``max_bytes``): when full, records are dropped with an
error log naming the file and how many were lost.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from cfgateway.costs.ledger.record import UsageRecord

logger = logging.getLogger("cfgateway.cost")

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
Item = tuple[UsageRecord, str | None]
SettleMany = Callable[[Sequence[Item]], None]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class Spool:
    """Thread-safe (one lock for appends, one replayer at a time), fork-aware (a child starts its own files)."""

    def __init__(self, directory: str | os.PathLike[str], key: str, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 adopt: bool = True) -> None:  # fmt: skip
        self.directory = Path(directory)
        self.key = key
        self.max_bytes = max_bytes
        self.adopt = adopt  # False for ledgers that only this process can reach (a user's own object)
        self._lock = threading.Lock()
        self._replaying = threading.Lock()
        self._pid = -1
        self._reset()
        self._orphans_checked = False

    def __repr__(self) -> str:
        return f"Spool({str(self.directory)!r}, key={self.key!r})"

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._stem = f"{self.key}.{self._pid}.{os.urandom(4).hex()}"
        self._fh: BinaryIO | None = None
        self._live_lines = 0
        self._sealed: list[Path] = []
        self._seq = 0
        self._bytes = 0
        self._dropped = 0

    @property
    def live_path(self) -> Path:
        return self.directory / f"{self._stem}.live.jsonl"

    @property
    def pending(self) -> bool:
        """Records wait for the ledger (this process's, or orphans not yet looked for)."""
        return bool(self._live_lines or self._sealed or (self.adopt and not self._orphans_checked))

    def count(self) -> int:
        """Records waiting in this process's spool files (reads the sealed files)."""
        with self._lock:
            sealed, live = list(self._sealed), self._live_lines
        n = live
        for path in sealed:
            try:
                n += sum(1 for line in path.read_bytes().splitlines() if line.strip())
            except FileNotFoundError:
                continue
        return n

    # -- writing -------------------------------------------------------------------------------
    def append(self, record: UsageRecord, reservation_id: str | None) -> bool:
        """Keep ``record`` for a later replay; False (and an error log) when the spool is full or unwritable."""
        line = json.dumps({"r": record.to_dict(), "res": reservation_id}, default=str, separators=(",", ":"))
        data = (line + "\n").encode("utf-8", "backslashreplace")
        with self._lock:
            if self._pid != os.getpid():
                self._reset()  # a forked child: the parent's files are the parent's
            if self._bytes + len(data) > self.max_bytes:
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 1000 == 0:
                    logger.error(
                        "usage spool %s is full (%d bytes, max_bytes=%d): %d usage record(s) DROPPED while the "
                        "ledger is unreachable; fix the ledger or raise spool_max_bytes",
                        self.live_path, self._bytes, self.max_bytes, self._dropped,
                    )  # fmt: skip
                return False
            try:
                fh = self._open()
                fh.write(data)
                fh.flush()
            except OSError:
                self._dropped += 1
                logger.exception("could not write usage spool %s: a usage record was DROPPED", self.live_path)
                return False
            self._bytes += len(data)
            self._live_lines += 1
            return True

    def _open(self) -> BinaryIO:
        if self._fh is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.live_path, "ab")  # noqa: SIM115 - kept open between appends
        return self._fh

    def _close_live(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def close(self) -> None:
        with self._lock:
            self._close_live()

    # -- replaying -----------------------------------------------------------------------------
    def _seal(self) -> None:
        """Under the lock: the live file joins the replay queue; later appends start a new one."""
        self._close_live()
        if self._live_lines:
            self._seq += 1
            sealed = self.directory / f"{self._stem}.r{self._seq:06d}.jsonl"
            os.replace(self.live_path, sealed)
            self._sealed.append(sealed)
            self._live_lines = 0

    def _adopt_orphans(self) -> list[Path]:
        """Files of this ledger left by processes that are gone, oldest first, renamed to be ours."""
        self._orphans_checked = True
        if not self.adopt or not self.directory.is_dir():
            return []
        found: list[tuple[float, Path]] = []
        for path in self.directory.glob(f"{self.key}.*.jsonl"):
            parts = path.name.split(".")
            if len(parts) != 5 or not parts[1].isdigit() or int(parts[1]) == self._pid or _alive(int(parts[1])):
                continue
            try:
                found.append((path.stat().st_mtime, path))
            except FileNotFoundError:
                continue
        adopted: list[Path] = []
        for _, path in sorted(found):
            self._seq += 1
            mine = self.directory / f"{self._stem}.r{self._seq:06d}.jsonl"
            try:
                os.replace(path, mine)  # atomic: if another process took it first, ours fails
            except FileNotFoundError:
                continue
            self._bytes += mine.stat().st_size
            adopted.append(mine)
        if adopted:
            logger.warning("adopted %d usage spool file(s) left by stopped processes in %s", len(adopted),
                           self.directory)  # fmt: skip
        return adopted

    def replay(self, settle_many: SettleMany, *, batch: int = 200) -> int | None:
        """Settle every spooled record in order. Returns how many were replayed, or ``None`` when another
        thread is replaying. Raises what ``settle_many`` raises (the rest stays spooled)."""
        if not self._replaying.acquire(blocking=False):
            return None
        try:
            with self._lock:
                if self._pid != os.getpid():
                    self._reset()
                orphans = [] if self._orphans_checked else self._adopt_orphans()
                self._sealed[:0] = orphans
                self._seal()
                queue = list(self._sealed)
            done = 0
            for path in queue:
                done += self._replay_file(path, settle_many, batch)
                with self._lock:
                    self._sealed.remove(path)
            if self._dropped:
                logger.error("the usage spool dropped %d record(s) while it was full", self._dropped)
                self._dropped = 0
            return done
        finally:
            self._replaying.release()

    def _replay_file(self, path: Path, settle_many: SettleMany, batch: int) -> int:
        lines = path.read_bytes().splitlines()
        done = 0
        try:
            for start in range(0, len(lines), batch):
                items = [_item(raw) for raw in lines[start : start + batch] if raw.strip()]
                settle_many([i for i in items if i is not None])
                done = start + batch
        except BaseException:
            rest = b"".join(raw + b"\n" for raw in lines[done:])
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(rest)
            os.replace(tmp, path)
            with self._lock:
                self._bytes -= sum(len(raw) + 1 for raw in lines[:done])
            raise
        size = sum(len(raw) + 1 for raw in lines)
        path.unlink(missing_ok=True)
        with self._lock:
            self._bytes = max(0, self._bytes - size)
        return len(lines)


def _item(raw: bytes) -> Item | None:
    try:
        d = json.loads(raw)
        return UsageRecord.from_dict(d["r"]), d.get("res")
    except (ValueError, KeyError, TypeError):
        logger.error("skipping an unreadable usage spool line: %r", raw[:300])
        return None


__all__ = ["DEFAULT_MAX_BYTES", "Spool"]
