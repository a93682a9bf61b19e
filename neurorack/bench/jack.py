"""A JACK server on its dummy driver (clocked like a sound card), for the latency and soak benches
and the audio tests. jackd comes from deploy/apt-packages.txt (package jackd2)."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid


class JackServer:
    def __init__(self, rate: int = 48000, period: int = 128):
        if not shutil.which("jackd"):
            raise RuntimeError("jackd is not installed: run deploy/install-system-deps.sh (package jackd2)")
        self.name = f"nrtest-{uuid.uuid4().hex[:8]}"
        self.rate, self.period = rate, period
        self.process = None

    def start(self) -> "JackServer":
        os.environ["JACK_DEFAULT_SERVER"] = self.name  # for every client this process (and its children) opens
        self.process = subprocess.Popen(["jackd", "-n", self.name, "-d", "dummy", "-r", str(self.rate),
                                         "-p", str(self.period)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        import jack
        deadline = time.monotonic() + 10
        while True:
            try:
                jack.Client("probe-up", no_start_server=True).close()
                return self
            except jack.JackOpenError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"jackd did not start: {self.process.stderr.read().decode()[-500:]}")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # a loaded machine: a bench's figures must not be lost to it
                self.process.kill()
                self.process.wait()
