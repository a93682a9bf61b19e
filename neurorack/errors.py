"""Errors a user can act on.

Everything the CLI reports as a one-line message derives from NeurorackError;
any other exception is a bug in neurorack.
"""


class NeurorackError(Exception):
    """A problem with the user's input, files or environment, phrased for the user."""


class AudioFileError(NeurorackError):
    """An audio file is missing, unreadable, empty or not finite."""


class SilentAudioError(AudioFileError):
    """The audio holds nothing above the analysis floor, so there is nothing to describe."""


class DescriptorError(NeurorackError):
    """A descriptor trajectory has the wrong shape, names or non-finite values."""


class CheckpointError(NeurorackError):
    """A model checkpoint is missing, corrupt, or of another architecture."""
