"""Harmony: chord symbols, chord labelling of several voices, and the triad baseline (no models)."""
