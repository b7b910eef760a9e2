"""memwh: a warehouse for studying verbatim memorization in language models."""

__version__ = "0.1.0"
