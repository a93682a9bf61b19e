"""Core pinning: the audio process on one core, the render process on the others."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from neurorack.engine.cpus import CorePlan, plan_cores
from neurorack.engine.render_process import RenderProcess
from neurorack.errors import NeurorackError
from neurorack.assembly import ModuleOptions, assemble
from neurorack.settings import Settings
from neurorack.sounds.library import SoundLibrary


def test_auto_gives_audio_the_last_core_and_rendering_the_rest():
    plan = plan_cores("auto", allowed={0, 1, 2, 3})
    assert plan == CorePlan(frozenset({3}), frozenset({0, 1, 2}))
    assert plan.describe() == "audio 3, render 0,1,2"
    assert plan_cores(1, allowed={0, 1, 2, 3}) == CorePlan(frozenset({1}), frozenset({0, 2, 3}))


def test_nothing_is_pinned_when_off_or_on_a_single_core():
    assert plan_cores("off", allowed={0, 1}) == CorePlan(None, None)
    assert plan_cores("auto", allowed={0}) == CorePlan(None, None)
    assert CorePlan(None, None).describe() == "not pinned"


def test_a_core_the_machine_lacks_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="audio cpu 7 is not one of this machine's cores \\(0,1\\)"):
        plan_cores(7, allowed={0, 1})
    settings = Settings()
    with pytest.raises(NeurorackError, match="audio cpu must be"):
        settings.update({"audio": {"cpu": "fastest"}}, "run.toml")
    config = tmp_path / "run.toml"
    config.write_text("[audio]\ncpu = 4096\n")
    with pytest.raises(NeurorackError, match="settings: audio cpu 4096 is not one of this machine's cores"):
        assemble(ModuleOptions(board="sim", config=config, persist=False, live=True))


PINNED_CHILD = """
import json, os, sys, threading, time
from neurorack.engine.cpus import pin_process
stop = threading.Event()
before = threading.Thread(target=stop.wait); before.start()      # a thread that exists already
pin_process({int(sys.argv[1])})
after = threading.Thread(target=stop.wait); after.start()        # one started afterwards
tasks = {tid: sorted(os.sched_getaffinity(int(tid))) for tid in os.listdir("/proc/self/task")}
stop.set()
print(json.dumps(tasks))
"""


def test_every_thread_of_the_audio_process_is_pinned():
    core = max(os.sched_getaffinity(0))
    result = subprocess.run([sys.executable, "-c", PINNED_CHILD, str(core)], capture_output=True, text=True,
                            check=True)
    tasks = json.loads(result.stdout)
    assert len(tasks) == 3 and all(cores == [core] for cores in tasks.values())


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to tell pinned from not")
def test_the_render_process_runs_on_its_own_cores_and_stays_there_after_a_restart(tmp_path):
    render_core = min(os.sched_getaffinity(0))
    traj = SoundLibrary(tmp_path).get("Snap").trajectory
    renderer = RenderProcess(48000, slabs=3, slab_seconds=1.0, cpus={render_core}).start()
    try:
        for _ in range(2):
            pid = renderer.info.pid
            renderer.render(traj, renderer.release)  # torch's threads exist after a render
            threads = os.listdir(f"/proc/{pid}/task")
            assert {tid: os.sched_getaffinity(int(tid)) for tid in threads} == dict.fromkeys(threads, {render_core})
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(NeurorackError, match="started again"):
                renderer.render(traj, renderer.release)
            assert renderer.info.pid != pid
    finally:
        renderer.stop()
    assert os.sched_getaffinity(0) != {render_core}  # this process was not touched


def test_the_gil_bench_measures_a_waking_thread_beside_the_screens_drawing():
    result = subprocess.run([sys.executable, "-m", "neurorack.bench.gil", "0.5", "1", "0.0005"],
                            capture_output=True, text=True, check=True, timeout=60)
    row = json.loads(result.stdout)
    # 0.5 s of 2 ms periods: most wakes happen, however late some are; lateness is never negative
    assert row["pinned"] is True and 100 <= row["wakes"] <= 250
    assert 0 <= row["median_ms"] <= row["p99_ms"] <= row["max_ms"]


def test_the_audio_callback_thread_raises_itself_to_sched_fifo_and_only_itself():
    """The callback runs on a thread PortAudio starts; this test's thread stands in for it."""
    import threading

    from neurorack.engine.audio import AudioOutput
    from test_engine import marked_engine

    engine, _ = marked_engine()
    audio = AudioOutput(engine, rt_priority=20)
    seen = {}

    class Status:
        output_underflow = False

    def callback_thread():
        audio._callback(np.zeros((128, 2), np.float32), 128, None, Status())
        seen["policy"], seen["priority"] = os.sched_getscheduler(0), os.sched_getparam(0).sched_priority

    thread = threading.Thread(target=callback_thread)
    thread.start()
    thread.join()
    if os.geteuid() != 0 and audio.realtime != "yes":
        assert "SCHED_FIFO 20 refused" in audio.realtime  # a user without rtprio: said, not fatal
        return
    assert audio.realtime == "yes"
    assert (seen["policy"], seen["priority"]) == (os.SCHED_FIFO, 20)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the main thread is left alone
