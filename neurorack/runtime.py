"""The process runtime a playing module needs, in one place: `neurorack run` enters it, and so
does every benchmark that measures the module in its own process, so a figure is measured
under the runtime it reports on (a test checks that they share it).

- The switch interval: the audio callback needs the GIL every block (2.7 ms at 128 frames); a
  thread holding it (OSC parsing, the CV poller) must hand it over sooner than Python's 5 ms.
- The cores (engine/cpus.py): the whole audio process on one core, where the real-time
  callback thread takes the GIL the moment another thread lets go.
- The garbage collector: a full collection holds the GIL for ~45 ms here, and the audio
  callback waits for it. What exists when the module starts lives as long as it: frozen, so
  collections skip it.
- Priorities: the audio thread's SCHED_FIFO (``[audio] rt_priority``, taken by the callback
  thread itself, engine/audio.py) and the render process's nice level (render_process.py).

>>> with ModuleRuntime(module.cores) as runtime:
...     runtime.freeze()      # once everything the module keeps is made
"""
from __future__ import annotations

import gc
import logging
import os
import sys
from dataclasses import dataclass

from .engine.cpus import CorePlan, allowed_cores, pin_process

log = logging.getLogger(__name__)
SWITCH_INTERVAL_S = 0.0005


@dataclass
class ModuleRuntime:
    cores: CorePlan
    switch_interval: float = SWITCH_INTERVAL_S

    def __enter__(self) -> "ModuleRuntime":
        self._before = (sys.getswitchinterval(), allowed_cores())
        sys.setswitchinterval(self.switch_interval)
        pin_process(self.cores.audio)
        log.info("cores: %s", self.cores.describe())
        return self

    def freeze(self) -> None:
        """Collect, then move everything alive into the permanent generation."""
        gc.collect()
        gc.freeze()

    def describe(self) -> dict:
        """What this process runs under now (the benchmarks record it beside their figures)."""
        return {"switch_interval_s": sys.getswitchinterval(), "cores": self.cores.describe(),
                "audio_cores": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                "gc_frozen": gc.get_freeze_count() > 0}

    def __exit__(self, *exc) -> None:
        # Only a benchmark that goes on after the module leaves; `neurorack run` exits instead.
        switch, cores = self._before
        gc.unfreeze()
        sys.setswitchinterval(switch)
        if self.cores.audio is not None and cores:
            pin_process(cores)
