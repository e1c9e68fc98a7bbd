"""Data: folders of MIDI as tokenized corpora, the shipped corpus build, the copy index."""
