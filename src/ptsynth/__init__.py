"""Differentially private aggregates and synthetic microdata for human-trafficking case records."""

__version__ = "0.1.0"
