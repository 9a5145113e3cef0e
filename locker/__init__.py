"""locker: an encrypted local secrets locker."""

__version__ = "0.1.0"
