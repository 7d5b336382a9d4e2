"""Offline: Delta readers, point-in-time training sets, validation, training, registry."""
