"""Adapters: the only code that talks to AWS or other HTTP services."""
