"""The real-time engine: controls, the pre-render worker, gate scheduling, voices and audio output."""
