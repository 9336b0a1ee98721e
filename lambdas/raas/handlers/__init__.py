"""Thin Lambda handlers: parse the event, call a service, map errors to HTTP."""
