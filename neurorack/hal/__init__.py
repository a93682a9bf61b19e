"""Hardware abstraction: ADCs, CV inputs, board profiles. Knows nothing of the model."""
