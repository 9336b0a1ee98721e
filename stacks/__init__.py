"""The raas CDK app: one module per stack."""
