"""Sweeps: hyper-parameter search over a job spec, each trial a job (see docs/sweeps.md)."""
