"""The model in a child process, rendering impacts into shared memory.

Why a process: the audio callback is Python and needs the GIL every block (2.7 ms at 128
frames). A render in a thread holds the GIL between torch ops, and when the kernel preempts
that thread the callback waits a whole time slice: xruns under load. The child has its own
interpreter; the audio process only waits on a pipe, which releases the GIL.

Impacts live in preallocated slabs of one shared-memory block (``slabs`` x ``slab_seconds``).
The parent picks a free slab and sends the trajectory (a few KB); the child zeroes the slab,
renders the head into it and says so (the parent publishes ``slab[:n]`` at once), then writes
the rest while the head plays. A slab is free again when the pre-render worker releases the
last buffer viewing it. The child runs at a lower priority than the audio process, ignores
Ctrl-C (the parent stops it) and exits when the parent's end of the pipe closes.

A child that dies or hangs is started again; the render that was in flight fails, and the
gate keeps its last good impact.

>>> renderer = RenderProcess(sample_rate=48000).start()    # loads the model in the child
>>> renderer.render(trajectory, publish=print)              # publish(buffer) after the head
"""
from __future__ import annotations

import gc
import logging
import multiprocessing as mp
import os
import signal
import subprocess
import sys
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from dataclasses import replace
from multiprocessing.shared_memory import SharedMemory

import numpy as np

from .. import descriptors as D
from ..errors import NeurorackError
from .cpus import pin_process
from .render_messages import ChildJob, Done, Failed, Head, Ready, Render, RendererInfo, Stop
from .renderers import BuffersBusy, Publish

log = logging.getLogger(__name__)
START_TIMEOUT_S = 120.0  # importing torch (the cpu backend) on a Pi 4 from a cold SD card takes a while
RENDER_TIMEOUT_S = 5.0
FADE_FRAMES = 10  # an impact longer than a slab is faded out over its last 0.1 s, not cut


class RenderProcess:
    def __init__(self, sample_rate: int = 48000, model=None, backend: str = "auto", threads: int = 1,
                 slab_seconds: float = 8.0, slabs: int = 12, nice: int = 5, cpus=None):
        self.sample_rate = sample_rate
        self.options = {"model": str(model) if model else None, "backend": backend, "threads": threads}
        self.slab_samples = int(slab_seconds * sample_rate)
        self.n_slabs, self.nice = slabs, nice
        self.cpus = sorted(cpus) if cpus else []  # the cores the child may run on (engine/cpus.py); []: any
        self.info = RendererInfo("starting", "", 0, where="render process")
        self.restarts = 0
        self._shm: SharedMemory | None = None
        self._slabs: np.ndarray | None = None
        self._free: list[int] = []
        self._conn = None
        self._process = None
        self._job = 0
        self._warned_long = False

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "RenderProcess":
        """Allocate the slabs and start the child; returns once its model is loaded (or raises
        NeurorackError with the child's reason)."""
        self._shm = SharedMemory(create=True, size=self.n_slabs * self.slab_samples * 4)
        self._slabs = np.ndarray((self.n_slabs, self.slab_samples), np.float32, buffer=self._shm.buf)
        self._free = list(range(self.n_slabs))
        try:
            self._spawn()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self) -> None:
        # A plain `python -m` child, not multiprocessing's spawn: spawn re-imports the caller's main
        # module in the child, which would start a second module from any unguarded script.
        parent, child = mp.Pipe()
        job = ChildJob(self._shm.name, self.n_slabs, self.slab_samples, self.sample_rate, self.nice, tuple(self.cpus),
                       **self.options)
        command = [sys.executable, "-m", __name__, str(child.fileno()), job.to_json()]
        # numpy's BLAS and ONNX Runtime's OpenMP start a thread per core unless told: on the
        # small matrices of one impact a pool is several times slower, and it would take the
        # audio process's core.
        threads = str(self.options["threads"] or 1)
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        self._process = subprocess.Popen(command, pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, env=env)
        child.close()
        self._conn = parent
        if not parent.poll(START_TIMEOUT_S):
            self._kill()
            raise NeurorackError(f"the render process did not load the model within {START_TIMEOUT_S:.0f} s")
        try:
            message = parent.recv()
        except (EOFError, OSError):
            code = self._process.wait(5)
            raise NeurorackError(f"the render process exited while starting (exit code {code})") from None
        if isinstance(message, Failed):
            self._process.wait(5)
            raise NeurorackError(message.reason)
        pid = self._process.pid
        self.info = replace(message.info, where=f"render process {pid}", pid=pid)
        if not self.restarts:
            for line in self.info.passed_over:
                log.info("inference backend %s", line)
            log.info("inference backend: %s (%s)", self.info.backend, self.info.model)

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(5)

    def _restart(self, why: str) -> None:
        self._kill()
        self.restarts += 1
        log.error("%s; starting the render process again", why)
        self._spawn()

    def stop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(Stop())
            except (OSError, BrokenPipeError):
                pass
            if self._process is not None:
                try:
                    self._process.wait(2)
                except subprocess.TimeoutExpired:
                    pass
            self._kill()
            self._conn.close()
            self._conn = None
        if self._shm is not None:
            self._slabs = None
            try:
                self._shm.close()
            except BufferError:
                pass  # voices still view the slabs; the mapping goes when the process does
            self._shm.unlink()
            self._shm = None

    # -- Renderer -------------------------------------------------------------------------------
    def render(self, traj: D.Trajectory, publish: Publish) -> None:
        if not self._free:
            raise BuffersBusy(f"all {self.n_slabs} impact buffers are playing")
        traj = self._fit(traj)
        slab = self._free.pop()
        self._job += 1
        published = False
        try:
            self._conn.send(Render(self._job, slab, traj.curves, traj.timbre, traj.moved))
            while True:
                if not self._conn.poll(RENDER_TIMEOUT_S):
                    self._restart(f"a render took longer than {RENDER_TIMEOUT_S:.0f} s")
                    raise NeurorackError("the render process hung and was started again")
                message = self._conn.recv()
                if message.job != self._job:
                    continue  # the answer to a render that failed earlier
                if isinstance(message, Head):
                    publish(self._slabs[slab, :message.frames])
                    published = True
                elif isinstance(message, Done):
                    return
                else:
                    raise NeurorackError(message.reason)
        except (EOFError, OSError):
            code = self._process.poll() if self._process is not None else None
            self._restart(f"the render process died (exit code {code})")
            raise NeurorackError("the render process died and was started again") from None
        finally:
            if not published:
                self._free.append(slab)

    def release(self, buffer: np.ndarray) -> None:
        if self._slabs is None:
            return
        offset = buffer.__array_interface__["data"][0] - self._slabs.__array_interface__["data"][0]
        slab = offset // (self.slab_samples * 4)
        if 0 <= slab < self.n_slabs and slab not in self._free:
            self._free.append(slab)

    def _fit(self, traj: D.Trajectory) -> D.Trajectory:
        """An impact longer than a slab, shortened to fit and faded out (said once)."""
        frames = self.slab_samples * D.FRAME_RATE // self.sample_rate
        if traj.n_frames <= frames:
            return traj
        if not self._warned_long:
            log.warning("an impact of %.1f s is longer than the %.1f s a buffer holds: shortened",
                        traj.duration, frames / D.FRAME_RATE)
            self._warned_long = True
        curves = traj.curves[:frames].copy()
        loud = D.INDEX["loudness"]
        curves[-FADE_FRAMES:, loud] *= np.linspace(1.0, 0.0, FADE_FRAMES, dtype=np.float32)
        return D.Trajectory(curves, traj.timbre, traj.moved)


def serve(conn, job: ChildJob) -> None:
    """The child's main: load the model, then render what the parent asks until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us
    pin_process(set(job.cpus))  # before torch starts its threads (they inherit it); numpy's exist already
    try:
        os.nice(job.nice)  # below the audio process: its threads hand the GIL to the callback
    except OSError:
        pass
    try:
        from ..model.generator import load_model

        generator = load_model(job.model, backend=job.backend, threads=job.threads, trace=False)
        shm = SharedMemory(name=job.shm)
        # The parent owns the block and unlinks it. Our own resource tracker would unlink it when
        # this process ends (a restart would pull the slabs from under the parent): forget it.
        resource_tracker.unregister(shm._name, "shared_memory")
        slabs = np.ndarray((job.slabs, job.slab_samples), np.float32, buffer=shm.buf)
        warm = D.Trajectory(np.full((30, len(D.NAMES)), 0.5, np.float32), np.zeros(D.TIMBRE_BANDS, np.float32))
        generator.render_into(warm, slabs[0], job.sample_rate)  # first-call costs paid here, not on a gate
        # torch's objects make a full collection take ~45 ms, which would delay a render: they
        # live as long as the process, so the collector stops looking at them.
        gc.collect()
        gc.freeze()
    except Exception as exc:  # the parent shows this line and exits
        conn.send(Failed(0, f"cannot load the model: {exc}"))
        return
    conn.send(Ready(RendererInfo.of(generator)))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if isinstance(message, Stop):
            return
        try:
            generator.render_into(D.Trajectory(message.curves, message.timbre, message.moved), slabs[message.slab],
                                  job.sample_rate,
                                  on_head=lambda n: conn.send(Head(message.job, n)))
            conn.send(Done(message.job))
        except Exception as exc:
            conn.send(Failed(message.job, f"{type(exc).__name__}: {exc}"))


def main(argv: list[str]) -> None:
    fd, job = argv
    serve(Connection(int(fd)), ChildJob.from_json(job))


if __name__ == "__main__":
    main(sys.argv[1:])
