"""locker: an encrypted local secrets locker."""

__version__ = "0.2.0"
