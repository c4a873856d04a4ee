"""The aicost cost monitor: ingest, price, store and expose LLM usage."""

__version__ = "0.1.0"
