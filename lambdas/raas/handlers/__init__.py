"""Thin Lambda handlers: parse the event, call a service, map errors to HTTP."""

import os

# Inside Lambda, read and check the settings while the function initialises, so a deployment
# with a missing or misspelt setting fails its cold start with the reason (ConfigurationError)
# instead of an unrelated error mid-request. The runtime always sets AWS_LAMBDA_FUNCTION_NAME:
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:
    from raas.bootstrap import services

    services()
