"""The Processing provider and its algorithms, one per module."""
