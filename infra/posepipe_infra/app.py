"""The CDK app: settings from context, the stack, and cdk-nag's AwsSolutions checks on all of it."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from posepipe_infra.paths import REPO
from posepipe_infra.settings import DeploymentSettings
from posepipe_infra.stack import PosepipeStack


def build_app(
    context: Mapping[str, Any] | None = None, outdir: str | None = None
) -> tuple[App, PosepipeStack]:
    """The app and its one stack; ``cdk synth`` fails on any unacknowledged cdk-nag finding."""
    feature_flags = json.loads((REPO / "cdk.json").read_text())["context"]  # as `cdk` passes them
    app = App(context={**feature_flags, **(context or {})}, outdir=outdir)
    settings = DeploymentSettings.from_context(app.node.try_get_context)
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    env = Environment(account=account, region=region) if account and region else None
    stack = PosepipeStack(app, settings.stack_name, settings=settings, env=env)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack
