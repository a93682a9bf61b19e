"""Sounds: named descriptor trajectories (the library) and morphs between two of them."""
