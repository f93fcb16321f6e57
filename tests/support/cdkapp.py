"""The CDK app synthesized once per session as `make synth` does (the layer built for real, asset
metadata on), for the tests that read its templates and the tests that run its staged assets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the CDK (jsii, Node) is loaded only when an app is synthesized
    from aws_cdk.assertions import Template
    from posepipe_infra.stack import PosepipeStack

ASSET_METADATA = {"aws:cdk:enable-asset-metadata": True}  # as the cdk CLI sets it


@dataclass
class Synthesized:
    stack: PosepipeStack
    template: Template
    resources: dict[str, dict[str, Any]]
    outdir: Path

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == kind}

    def one(self, kind: str) -> dict[str, Any]:
        (resource,) = self.of_type(kind).values()
        return resource

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.resolve(self.stack.get_logical_id(construct.node.default_child)))

    def asset_folder(self, construct: Any) -> Path:
        """The staged asset folder of a function or a layer (what `cdk deploy` would upload)."""
        resource = self.resources[self.logical_id(construct)]
        return self.outdir / str(resource["Metadata"]["aws:asset:path"])


def synthesize(context: dict[str, Any] | None = None, outdir: Path | None = None) -> Synthesized:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk.assertions import Template
    from posepipe_infra.app import build_app

    app, stack = build_app(context, outdir=str(outdir) if outdir else None)
    assembly = app.synth()  # runs cdk-nag: raises on an unacknowledged finding
    template = Template.from_stack(stack)
    return Synthesized(stack, template, template.to_json()["Resources"], Path(assembly.directory))


@pytest.fixture(scope="session")
def default_app(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The app as `cdk deploy` builds it with no context, the layer built for real."""
    return synthesize(ASSET_METADATA, outdir=tmp_path_factory.mktemp("cdk.out"))
