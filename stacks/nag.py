"""cdk-nag 3.x acknowledgements: every one names the rule and says why it does not apply."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    if len(reason) < 20:
        raise ValueError(f"acknowledging {rule} needs a specific reason")
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))
