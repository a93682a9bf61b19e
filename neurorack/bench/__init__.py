"""Benchmarks behind `neurorack bench ...`: speed, quality, control. Each returns a JSON-able dict."""
