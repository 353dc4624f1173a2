"""Stop signals are acted on outside the handler, so they cannot deadlock the main thread."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from app.stop_signals import stop_on_signal


def test_a_signal_while_the_main_thread_holds_the_stop_lock_still_stops(caplog):
    lock = threading.Lock()
    got_lock: list[bool] = []
    stopped = threading.Event()

    def stop() -> None:
        # Called in the handler itself, this would wait on the main thread that holds the lock.
        got_lock.append(lock.acquire(timeout=5))
        if got_lock[-1]:
            lock.release()
        stopped.set()

    previous = signal.getsignal(signal.SIGTERM)
    with caplog.at_level(logging.INFO), stop_on_signal(stop, message="%s: stopping"):
        with lock:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs here, inside the lock
        assert stopped.wait(10)
    assert got_lock == [True]
    assert "SIGTERM: stopping" in caplog.text
    assert signal.getsignal(signal.SIGTERM) is previous


def test_the_scheduler_process_stops_cleanly_on_sigterm(db_url, tmp_path):
    command = [str(Path(sys.executable).with_name("partypoints")), "scheduler"]
    env = {**os.environ, "DATABASE_URL": db_url, "APP_ENV": "dev"}
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        assert "定时任务已启动" in process.stdout.readline()
        # Jobs are scheduled once the handlers are in place: a signal before would just kill.
        while "scheduled monthly-board" not in process.stdout.readline():
            assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        # Read while waiting: a process blocked on a full pipe would never exit.
        out, _ = process.communicate(timeout=30)
        assert process.returncode == 0, out
        assert "SIGTERM received: stopping after the jobs in hand" in out
        assert "定时任务已停止" in out
    finally:
        if process.poll() is None:
            process.kill()
