"""GET /v1/health (no auth)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import Router

from raas import __version__
from raas.bootstrap import services
from raas.domain.model import Model
from raas.handlers.api import lambda_handler, make_app

router = Router()


class Health(Model):
    status: str
    version: str
    stage: str


@router.get("/v1/health", summary="Liveness check", tags=["platform"])
def health() -> Health:
    return Health(status="ok", version=__version__, stage=services().settings.stage)


app = make_app()
app.include_router(router)
handler = lambda_handler(app)
