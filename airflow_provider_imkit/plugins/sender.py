"""The background sender of the alerts: listener hooks only enqueue; this thread does the rest.

A bounded queue: when it is full, an alert is dropped and counted (logged at most once a
minute), so a slow or unreachable IMKIT never slows the component. The thread starts on the
first alert and is flushed, within a bounded time, when the component stops.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Job = Callable[[], None]


class BackgroundSender:
    """
    Run jobs (alert deliveries) one by one in a daemon thread.

    :param size: jobs waiting at most; more are dropped and counted.
    :param clock: ``time.monotonic``-like, for the once-a-minute drop log (tests inject one).
    """

    def __init__(self, size: int = 1000, clock: Callable[[], float] = time.monotonic) -> None:
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._clock = clock
        self._last_drop_log = -1e9
        self.dropped = 0
        self.failed = 0

    def submit(self, job: Job) -> bool:
        """Queue a job without ever blocking; False when the queue was full (counted)."""
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            now = self._clock()
            if now - self._last_drop_log >= 60:
                self._last_drop_log = now
                log.warning("IMKIT alerts: queue full, %d alert(s) dropped so far", self.dropped)
            return False
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="imkit-alerts", daemon=True)
                    self._thread.start()
        return True

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                job()
            except Exception:
                self.failed += 1
                log.exception("IMKIT alerts: an alert failed")
            finally:
                self._queue.task_done()

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for queued jobs to finish; True when all did."""
        if self._thread is None:
            return True
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        done = not self._queue.unfinished_tasks
        if not done:
            log.warning(
                "IMKIT alerts: %d alert(s) still queued after %.0f s; giving up", self._queue.qsize(), timeout
            )
        return done

    def stop(self, timeout: float) -> None:
        """Flush for up to ``timeout`` seconds, drop (and count) what is left, end the thread."""
        self.flush(timeout)
        with self._queue.mutex:
            left = len(self._queue.queue)
            self._queue.queue.clear()
            self._queue.unfinished_tasks -= left
        self.dropped += left
        thread, self._thread = self._thread, None
        if thread is not None:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                return
            thread.join(timeout=1)
