"""Cordon: ANPR reads, hotlist matching and camera-site planning for a Community Safety Partnership."""

__version__ = "0.1.0"
