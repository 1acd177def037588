"""subgroups: a keyboard-driven console for email subscription groups."""

__version__ = "0.1.0"
