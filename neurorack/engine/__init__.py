"""The real-time engine: voices now; scheduling, pre-rendering and audio output next."""
