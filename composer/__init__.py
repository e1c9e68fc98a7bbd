"""composer: learn melodies from MIDI files and write new ones."""

__version__ = "0.1.0"
