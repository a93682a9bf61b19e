"""Renderers: what turns a trajectory into the audio a gate plays, for the pre-render worker.

``render(traj, publish)`` renders and calls ``publish(buffer)`` once the buffer is playable:
for a model, as soon as its head is rendered (the rest is written while the head plays).
``release(buffer)`` hands back a buffer no voice holds any more; ``stop()`` ends it.

- ``RenderProcess`` (render_process.py): the model in a child process, writing into shared
  memory. What a module runs live: torch never holds the audio process's GIL.
- ``LocalRenderer``: the model in this process. Offline recordings and tests.
- ``FunctionRenderer``: any ``traj -> audio`` function (tests, tools).
"""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from .. import descriptors as D
from .render_messages import RendererInfo

Publish = Callable[[np.ndarray], None]


class Renderer(Protocol):
    info: RendererInfo

    def render(self, traj: D.Trajectory, publish: Publish) -> None: ...

    def release(self, buffer: np.ndarray) -> None: ...

    def stop(self) -> None: ...


class BuffersBusy(Exception):
    """Every buffer is still playing: try again once voices let one go."""


class FunctionRenderer:
    """>>> FunctionRenderer(lambda traj: np.zeros(480, np.float32))"""

    info = RendererInfo("function", "", 0)

    def __init__(self, render: Callable[[D.Trajectory], np.ndarray]):
        self._render = render

    def render(self, traj: D.Trajectory, publish: Publish) -> None:
        publish(self._render(traj))

    def release(self, buffer: np.ndarray) -> None:
        pass

    def stop(self) -> None:
        pass


class LocalRenderer:
    """The generator in this process, head first, into a new buffer per impact."""

    def __init__(self, generator, sample_rate: int = 48000):
        self.generator, self.sample_rate = generator, sample_rate
        self.info = RendererInfo.of(generator)

    def render(self, traj: D.Trajectory, publish: Publish) -> None:
        out = np.empty(self.generator.n_samples(traj, self.sample_rate), np.float32)
        self.generator.render_into(traj, out, self.sample_rate, on_head=lambda n: publish(out[:n]))

    def release(self, buffer: np.ndarray) -> None:
        pass

    def stop(self) -> None:
        pass
