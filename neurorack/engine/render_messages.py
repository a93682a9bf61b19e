"""What the module and its render process say to each other: the child's one argument and
named messages over the pipe (pickled; they live here, not in render_process.py, because the
child runs that module as ``__main__``).

    parent -> child   ChildJob (argv, JSON, once), Render, Stop
    child -> parent   Ready (the model loaded) or Failed (job 0: it could not),
                      then per render: Head (playable up to here), Done or Failed
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class RendererInfo:
    """Which model renders, with what, and where: for the log and the Status screen."""

    backend: str
    model: str
    parameters: int
    meta: dict = field(default_factory=dict)
    passed_over: tuple[str, ...] = ()  # backends `auto` passed over, and why
    where: str = "in process"
    pid: int | None = None

    @classmethod
    def of(cls, generator, where: str = "in process", pid: int | None = None) -> "RendererInfo":
        return cls(generator.backend.name, str(generator.path), generator.n_parameters, dict(generator.meta),
                   tuple(generator.backend.passed_over), where, pid)


@dataclass(frozen=True)
class ChildJob:
    """Everything the render process needs to start, passed as one JSON argument."""

    shm: str  # the shared-memory block of the slabs
    slabs: int
    slab_samples: int
    sample_rate: int
    nice: int
    cpus: tuple[int, ...]
    model: str | None
    backend: str
    threads: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ChildJob":
        values = json.loads(text)
        return cls(**{**values, "cpus": tuple(values["cpus"])})


@dataclass(frozen=True)
class Render:
    job: int
    slab: int
    curves: np.ndarray
    timbre: np.ndarray
    moved: tuple = ()  # Trajectory.moved


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class Ready:
    info: RendererInfo


@dataclass(frozen=True)
class Head:
    job: int
    frames: int  # samples of the slab written and playable


@dataclass(frozen=True)
class Done:
    job: int


@dataclass(frozen=True)
class Failed:
    job: int  # 0: the model could not be loaded
    reason: str
