"""Structured JSON logs (one object per line on stdout), as CloudWatch Logs Insights reads them."""

from __future__ import annotations

from aws_lambda_powertools import Logger

SERVICE = "posepipe-endpoint"

# Powertools' Logger works outside Lambda too; LOG_LEVEL / POWERTOOLS_LOG_LEVEL set the level.
logger = Logger(service=SERVICE)
