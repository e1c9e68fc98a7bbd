"""Music: melodies, keys, meters, MIDI and the other files a musician opens."""
