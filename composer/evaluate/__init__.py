"""Evaluation: likelihood against baselines, statistics against real melodies."""
