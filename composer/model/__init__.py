"""The model: the network, its copy hints, checkpoints and the typed model bundle."""
