"""raas: multi-tenant RAG-as-a-Service runtime package (shipped to every Lambda)."""

__version__ = "0.1.0"
