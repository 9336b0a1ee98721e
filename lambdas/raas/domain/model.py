"""The base of the platform's pydantic models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A pydantic model whose validator and serializer are built on first use, not when its class is
    defined. A function imports dozens of models and uses a handful per request; building them all
    at import was about a third of a cold start's own cost (bench/cold_start.py)."""

    model_config = ConfigDict(defer_build=True)
