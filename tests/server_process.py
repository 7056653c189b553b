"""A device server in another process, for tests: `python -m hailort_py.server ...` started,
waited for (its "listening on" line), killed or stopped, and restarted on the same endpoint."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOUBLES = os.path.join(HERE, "doubles")


class ServerProcess:
    def __init__(self, models: list[str], *, driver: str = "emulator", keys: str | None = None,
                 bind: str = "tcp://127.0.0.1:*", extra: list[str] | None = None,
                 with_doubles: bool = False):
        self.models, self.driver, self.keys = list(models), driver, keys
        self.extra, self.with_doubles = list(extra or []), with_doubles
        self.endpoint = bind
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []

    def start(self, timeout: float = 120.0) -> ServerProcess:
        args = [sys.executable, "-m", "hailort_py.server", "--driver", self.driver,
                "--bind", self.endpoint, *self.extra]
        for m in self.models:
            args += ["--model", m]
        args += ["--keys", self.keys] if self.keys else ["--insecure"]
        path = [ROOT] + ([DOUBLES] if self.with_doubles else [])
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                   PYTHONPATH=os.pathsep.join(path + [os.environ.get("PYTHONPATH", "")]))
        self.lines = []
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        found = threading.Event()

        def read():
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                m = re.search(r"listening on (tcp://[^;, ]+)", line)
                if m:
                    self.endpoint = m.group(1)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found.is_set():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("device server did not start:\n" + "\n".join(self.lines[-30:]))
            found.wait(0.1)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kb(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def terminate(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()
