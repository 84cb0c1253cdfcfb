"""The console's screens, one per module, each with its own DEFAULT_CSS."""
