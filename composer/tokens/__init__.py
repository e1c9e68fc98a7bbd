"""Tokens: the vocabulary, Melody <-> token ids, and the grammar every sequence obeys."""
