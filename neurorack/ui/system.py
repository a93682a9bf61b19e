"""What the status screen reports about the machine: CPU load, memory, temperature.

Read from /proc and /sys, where Linux has them (a Pi, a Jetson, a desktop); "n/a" elsewhere."""
from __future__ import annotations

import os
from pathlib import Path

THERMAL = Path("/sys/class/thermal")


def _rss_mb(pid: int | str = "self") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def temperature_c() -> float | None:
    """The first thermal zone's temperature (the SoC on a Pi or a Jetson)."""
    for zone in sorted(THERMAL.glob("thermal_zone*")):
        try:
            return int((zone / "temp").read_text()) / 1000
        except (OSError, ValueError):
            continue
    return None


def system_status(render_pid: int | None = None) -> dict[str, str]:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    cores = os.cpu_count() or 1
    audio_mb, render_mb = _rss_mb(), _rss_mb(render_pid) if render_pid else None
    temp = temperature_c()
    memory = f"{audio_mb:.0f} MB" if audio_mb is not None else "n/a"
    if render_mb is not None:
        memory += f"+{render_mb:.0f}"
    return {"CPU": f"{100 * load / cores:.0f}%" if load is not None else "n/a", "Memory": memory,
            "Temp": f"{temp:.0f} °C" if temp is not None else "n/a"}
