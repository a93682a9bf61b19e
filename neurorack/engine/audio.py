"""Audio out through sounddevice (PortAudio: ALSA, JACK, PulseAudio).

The callback runs ``Engine.process`` on the first channel and copies it to the others. It
counts what went wrong (underflows: xruns; blocks that came late) and leaves the talking to
the main loop, which calls ``ensure_running`` a few times a second: if the device vanished
(a USB interface pulled, the JACK server gone) the stream is closed and opened again as soon
as the device is back, with one log line each way.

One case cannot be mended in the process: PortAudio 19.6's JACK backend never returns from
closing a stream whose server died, and cannot be re-initialised after it. Closing therefore
runs on a helper thread; if it hangs, ``AudioWedged`` tells the main loop to exit with status
75, and the service manager starts the firmware again (deploy/neurorack.service).
"""
from __future__ import annotations

import logging
import threading
import time

from ..errors import NeurorackError
from .cpus import raise_to_fifo
from .engine import Engine

log = logging.getLogger(__name__)
JACK_HOSTAPI = "JACK Audio Connection Kit"


class AudioDeviceError(NeurorackError):
    pass


class AudioWedged(NeurorackError):
    """The audio library cannot let go of a vanished device: only a new process can reopen it."""

    exit_code = 75  # EX_TEMPFAIL: try again


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio library itself is missing
        raise AudioDeviceError(f"PortAudio is not installed ({exc}); install libportaudio2") from None
    return sounddevice


def rescan():
    """Make PortAudio list devices again (a device that came back, a JACK server started)."""
    sd = _sounddevice()
    sd._terminate()  # sounddevice's documented way to re-scan: terminate and initialise PortAudio
    sd._initialize()


def resolve_device(spec):
    """None: the default output; an int: that index; "jack": the JACK server's output;
    any other text: the first output device whose name contains it (case-insensitive)."""
    sd = _sounddevice()
    if spec is None or spec == "default":
        return None
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return int(spec)
    hostapis = sd.query_hostapis()
    for index, device in enumerate(sd.query_devices()):
        if device["max_output_channels"] < 1:
            continue
        api = hostapis[device["hostapi"]]["name"]
        if (spec.lower() == "jack" and api == JACK_HOSTAPI) or spec.lower() in device["name"].lower():
            return index
    names = [d["name"] for d in sd.query_devices() if d["max_output_channels"] > 0]
    raise AudioDeviceError(f"no audio output {spec!r}; outputs here: {', '.join(names) or 'none'}")


class AudioOutput:
    def __init__(self, engine: Engine, device=None, sample_rate: int = 48000, block_size: int = 128,
                 channels: int = 2, retry_s: float = 2.0, rt_priority: int = 0):
        self.engine, self.device_spec = engine, device
        # The callback's thread raises itself to SCHED_FIFO on its first block (PortAudio's
        # ALSA thread is an ordinary one); the main loop reports a refusal once.
        self.rt_priority = rt_priority
        self.realtime: str | None = None  # None until the first block; then "yes" or why not
        self._realtime_reported = False
        self.sample_rate, self.block_size, self.channels = sample_rate, block_size, channels
        self.retry_s = retry_s
        self.close_timeout_s = 2.0
        self.stream = None
        self.xruns = 0  # output underflows PortAudio reported
        self.late = 0  # callbacks that came more than 1.5 blocks after the one before
        self.blocks = 0
        self.problem: str | None = None  # the current device problem, for the screen
        self._last_ns = 0
        self._late_ns = int(1.5e9 * block_size / sample_rate)
        self._next_try = 0.0
        self._stopped = False

    # -- the callback: no lock, no log, no torch, no arrays allocated ---------------------------
    def _callback(self, outdata, frames, time_info, status) -> None:
        if self.realtime is None:  # once per stream thread, before the first block
            self.realtime = raise_to_fifo(self.rt_priority) or "yes"
        now = time.monotonic_ns()
        if self._last_ns and now - self._last_ns > self._late_ns:
            self.late += 1
        self._last_ns = now
        if status.output_underflow:
            self.xruns += 1
        mono = outdata[:, 0]
        self.engine.process(mono)
        for channel in range(1, outdata.shape[1]):
            outdata[:, channel] = mono
        self.blocks += 1

    def _finished(self) -> None:
        self._last_ns = 0

    # -- main loop side -------------------------------------------------------------------------
    def open(self) -> None:
        sd = _sounddevice()
        device = resolve_device(self.device_spec)
        info = sd.query_devices(device, "output")
        channels = max(1, min(self.channels, int(info["max_output_channels"])))
        try:
            stream = sd.OutputStream(device=device, samplerate=self.sample_rate, blocksize=self.block_size,
                                     channels=channels, dtype="float32", latency="low",
                                     callback=self._callback, finished_callback=self._finished)
            stream.start()
        except sd.PortAudioError as exc:
            raise AudioDeviceError(f"cannot open {info['name']!r} at {self.sample_rate} Hz, "
                                   f"{self.block_size} frames: {exc}") from None
        self.stream = stream
        self.device_name = info["name"]

    def ensure_running(self) -> bool:
        """Open the stream, or reopen it if it stopped by itself; True while it plays."""
        if self._stopped:
            return False
        if self.stream is not None and self.stream.active:
            self._report_realtime()
            return True
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self.retry_s
        was_open = self.stream is not None
        if was_open:
            log.error("audio output %r stopped (device gone?); reopening", self.device_name)
            if not _within(self.close_timeout_s, self._close_quietly) or not _within(self.close_timeout_s, rescan):
                raise AudioWedged(f"the audio system hangs on the vanished {self.device_name!r}; "
                                  f"restarting the firmware to reopen it")
        try:
            self.open()
        except AudioDeviceError as exc:
            if self.problem != str(exc):
                log.error("%s; retrying every %.0f s", exc, self.retry_s)
            self.problem = str(exc)
            if not _within(self.close_timeout_s, rescan):  # the device may come back, under a new index
                raise AudioWedged("the audio system hangs while looking for devices; restarting the firmware")
            return False
        if self.problem or was_open:
            log.warning("audio output %r is back", self.device_name)
        self.problem = None
        return True

    def _report_realtime(self) -> None:
        if self.realtime is not None and not self._realtime_reported:
            self._realtime_reported = True
            if self.realtime != "yes":
                log.warning("%s", self.realtime)
            elif self.rt_priority:
                log.info("audio thread: SCHED_FIFO %d", self.rt_priority)

    def _close_quietly(self) -> None:
        stream, self.stream = self.stream, None
        try:
            stream.close(ignore_errors=True)
        except Exception:
            pass
        self.realtime, self._realtime_reported = None, False  # a new stream has a new thread

    def close(self) -> None:
        self._stopped = True
        if self.stream is not None:
            _within(self.close_timeout_s, self._close_quietly)


def _within(seconds: float, action) -> bool:
    """Run `action` on a helper thread; False if it has not returned within `seconds`."""
    thread = threading.Thread(target=action, name="audio-close", daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()
