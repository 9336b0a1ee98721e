"""Streamed answers in AWS (issue 14): the REST API's two answering routes stream Server-Sent Events.

What streams from a Python Lambda function today, and why this design
-------------------------------------------------------------------
* Lambda streams a response natively on the Node.js managed runtimes only; "for other languages, you
  can use a custom runtime with a custom Runtime API integration to stream responses or use the Lambda
  Web Adapter" (https://docs.aws.amazon.com/lambda/latest/dg/configuration-response-streaming.html).
  A streamed response reaches a client through a function URL or the InvokeWithResponseStream API.
* API Gateway REST APIs stream a Lambda proxy integration whose `responseTransferMode` is `STREAM`:
  API Gateway invokes the function with InvokeWithResponseStream (integration URI
  `.../2021-11-15/functions/<arn>/response-streaming-invocations`) and forwards the body as the
  function writes it, after a JSON prelude and 8 NUL bytes
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode-lambda.html).
  The method request is unchanged, so everything that runs before the integration still runs: the
  tenant REQUEST authorizer, API keys from the authorizer and the tiers' usage plans, the stage's WAF
  web ACL, request validation and our gateway responses.
  Limits (https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode.html):
  REST APIs only, all endpoint types; a stream lasts at most 15 minutes; idle timeout 5 minutes on
  Regional/private endpoints and 30 seconds on edge-optimized ones (this API's type); the first 10 MB
  are unthrottled, then 2 MB/s; no endpoint caching, content encoding or VTL response mapping; when a
  connection closes on a timeout "the Lambda function might continue to execute". Lambda's own
  streaming limits: 200 MB per response, the first 6 MB uncapped.
* Lambda function URLs stream too, but their only authentication is IAM or none
  (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html): no Lambda authorizer, usage plans,
  API keys or gateway responses, and a second public endpoint beside the API. Rejected.
* A WebSocket API runs a Lambda authorizer on `$connect` only
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-lambda-auth.html),
  has no usage plans, and changes the client protocol from one POST to a socket. Rejected.
* The Lambda Web Adapter (a third-party binary layer) would run a web server inside the function and
  hand it a reconstructed HTTP request, with the authorizer's context in an `x-amzn-request-context`
  header, which the application must then trust over any header a caller sends. Rejected in favour of:
* **Built here:** the REST API's own STREAM integration, in front of a Python 3.12 function whose
  wrapper script (AWS_LAMBDA_EXEC_WRAPPER) replaces the runtime's client with our own Runtime API loop
  in streaming mode (raas.handlers.stream_function; standard library only). The function receives
  API Gateway's proxy event as every other function does, and the handlers read the tenant from
  `requestContext.authorizer` only, which a caller cannot write: no header is ever trusted.

Routes: API Gateway cannot route on `Accept`, so the streaming function serves both answers of both
routes, `POST /v1/query` and `POST /v1/conversations/{conversation_id}/messages`: Server-Sent Events
with `Accept: text/event-stream`, JSON otherwise (JSON is sent through the same stream: the prelude,
then the body). Clients use the same URLs and headers as against `raas local`. The query function
keeps `/v1/search` and `/v1/queries`; the conversations function the other conversation routes.

Permissions: the function runs under the query function's role: it does exactly what that function
does for POST /v1/query (the message route's conversations live in the queries table the role already
writes), and the tenant data role's trust policy and the search collection's access policy already
name that role, so nothing is widened and no policy elsewhere changes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from raas.handlers.stream_function import HANDLER_MODULES
from raas.handlers.streaming import STREAMING_RESOURCES

if TYPE_CHECKING:
    from stacks.api import ApiStack

# (method, API Gateway path) of the routes whose integration streams
STREAMING_ROUTES: frozenset[tuple[str, str]] = frozenset(("POST", resource) for resource in STREAMING_RESOURCES)
GROUP = "stream"  # the function's name, log group and metrics are named like a handler group's
ROLE_OF = "query"  # whose role it runs under (see the module docstring)
HANDLER = "raas.handlers.stream_function.handler"
WRAPPER = "raas/handlers/stream_bootstrap"  # relative to the code asset (lambdas/), i.e. /var/task/...
LAMBDA_CODE = Path(__file__).resolve().parent.parent / "lambdas"  # the API stack's code asset
MEMORY_MB = 1024  # as the query function
# A stream may last up to 15 minutes; five bound one answer (the largest tier's max_tokens at a slow
# model's pace) and how long a tenant's reservation can stay open. The function's timeout matches,
# and the function stops generating a few seconds before it (raas.handlers.stream_function).
TIMEOUT = Duration.minutes(5)


class StreamingAnswers(Construct):
    """The streaming function and the STREAM integration the API's two answering routes use."""

    def __init__(self, scope: ApiStack, construct_id: str, *, architecture: lambda_.Architecture) -> None:
        super().__init__(scope, construct_id)
        if set(HANDLER_MODULES) != STREAMING_RESOURCES:
            raise SystemExit("raas.handlers.stream_function.HANDLER_MODULES does not match the streaming routes")
        wrapper = LAMBDA_CODE / WRAPPER
        if not os.access(wrapper, os.X_OK):
            # Lambda runs the wrapper itself; the asset zip keeps the file's mode (so must git: 100755).
            raise SystemExit(f"{wrapper} must be executable (chmod 755, and commit it with that mode)")
        settings = scope.settings
        role = scope.roles[ROLE_OF]
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=settings.function_log_group_name(GROUP),
            retention=settings.log_retention(),
            removal_policy=RemovalPolicy.DESTROY,
        )
        log_group.grant_write(role)
        environment = {
            **scope._environment(),  # the same settings as every API function
            "RAAS_TENANT_ROLE_ARN": scope.tenant_role.role_arn,
            # https://docs.aws.amazon.com/lambda/latest/dg/runtimes-modify.html#runtime-wrapper
            "AWS_LAMBDA_EXEC_WRAPPER": f"/var/task/{WRAPPER}",
        }
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=settings.function_name(GROUP),
            description="raas streamed answers: POST /v1/query and conversation messages (SSE or JSON)",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=architecture,
            handler=HANDLER,
            code=scope.code,
            layers=[scope.layer],
            memory_size=MEMORY_MB,
            timeout=TIMEOUT,
            tracing=lambda_.Tracing.ACTIVE,
            environment=environment,
            log_group=log_group,
            role=role,
        )
        # InvokeWithResponseStream needs lambda:InvokeFunction, which the integration grants per method
        # (https://docs.aws.amazon.com/lambda/latest/api/API_InvokeWithResponseStream.html).
        self.integration = apigw.LambdaIntegration(
            self.function,
            proxy=True,
            response_transfer_mode=apigw.ResponseTransferMode.STREAM,
            timeout=TIMEOUT,
        )
