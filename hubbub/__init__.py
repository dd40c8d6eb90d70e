"""hubbub: separate overlapping talkers with attention, then transcribe each one."""

__version__ = "0.1.0"
