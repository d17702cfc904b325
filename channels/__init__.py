"""Channels: one module per platform, each an input/output pair (Rasa's channels as the model)."""
