"""The decoder, checkpoints and inference backends. Knows nothing of hardware."""
