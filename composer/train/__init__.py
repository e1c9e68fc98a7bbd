"""Training: configuration, data split, windows, the loop and its run folders."""
