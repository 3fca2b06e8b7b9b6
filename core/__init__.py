"""The territory engine: arrays in, labels and plan figures out (numpy and scipy only)."""
