"""A sample becomes a library sound: analysed, scored against the model's render of it, saved.

The score is the MR-STFT of the model's resynthesis against the sample (model/quality.py), the
figure docs/benchmarks.md gives for every set. Above POOR_MRSTFT the import warns: 2.0 is the
90th percentile of the 607 evaluation-kit drums the model never heard (docs/bench/quality-hydrogen-eval.json:
median 1.55, 90th percentile 2.01) and the prototype's mean on the ten impacts (2.03), so a
sample above it is rendered worse than nine drums in ten. The sound is saved either way: a
poor resynthesis still plays its curves, it just sounds less like the sample.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import descriptors as D
from ..fileio import read_audio
from .library import Sound, SoundLibrary

POOR_MRSTFT = 2.0


@dataclass(frozen=True)
class Imported:
    sound: Sound
    mrstft: float | None  # the model's resynthesis against the sample; None: not measured
    silence_mrstft: float | None  # silence scored the same way, for scale
    unmeasured: str = ""  # why there is no score

    @property
    def poor(self) -> bool:
        """Above POOR_MRSTFT, or no nearer the sample than silence is (a short, quiet sample's
        silence can score under POOR_MRSTFT)."""
        return self.mrstft is not None and (self.mrstft > POOR_MRSTFT or self.mrstft >= self.silence_mrstft)

    def lines(self) -> list[str]:
        """What the user is told: the sound, its score, a warning when the score is poor."""
        out = [f"added {self.sound.name!r} ({self.sound.trajectory.duration:.2f} s)"]
        if self.mrstft is None:
            out.append(f"resynthesis not scored: {self.unmeasured}")
            return out
        out.append(f"resynthesis MR-STFT {self.mrstft:.2f} (silence scores {self.silence_mrstft:.2f}; "
                   f"lower is closer, above {POOR_MRSTFT:.1f} is poor)")
        if self.poor:
            how = ("no closer than silence" if self.mrstft >= self.silence_mrstft
                   else "worse than nine drums in ten")
            limit = f"above {POOR_MRSTFT:.1f}, " if self.mrstft > POOR_MRSTFT else ""
            out.append(f"warning: the model reproduces this sample poorly (MR-STFT {limit}{how}); "
                       f"the sound will play its curves but sound less like the sample")
        return out


def import_sample(library: SoundLibrary, path, name: str, load_generator=None, replace: bool = False,
                  source: str | None = None) -> Imported:
    """Analyse the audio file at `path` into the sound `name`, scored with the generator that
    `load_generator()` returns (called once the file has proved good; None: not scored);
    `source` names where it came from (default: the file's name). Every check (the name, the
    file, its length, silence) comes before anything is written, or a model loaded."""
    path = Path(path)
    name = library.check_new(name, replace)
    audio, sr = read_audio(path, D.MAX_SECONDS)
    trajectory = D.analyze(audio, sr)
    score = silence = None
    unmeasured = "no model given"
    if load_generator is not None:
        try:
            from ..model.quality import resynthesis_distance

            score, silence = resynthesis_distance(load_generator(), audio, sr, trajectory)
        except ImportError as exc:  # a torch-free runtime: the curves are imported all the same
            unmeasured = f"{exc.name or 'auraloss'} is not installed (the 'train' extra)"
    meta = {"source": source or path.name}
    if score is not None:
        meta["mrstft"] = round(score, 4)
    sound = library.add(name, trajectory, meta, replace=replace)
    return Imported(sound, score, silence, "" if score is not None else unmeasured)
