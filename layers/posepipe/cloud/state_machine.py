"""The video pipeline's one state machine definition: an ASL file with ``${Name}`` placeholders.

CDK fills them with definition substitutions; the local stack with :func:`render_definition`.
Nothing else in the repository describes the pipeline's states.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

DEFINITION_FILE = "video_pipeline.asl.json"
PLACEHOLDERS = frozenset(
    {
        "VideoSplitFunctionArn",
        "AggregateFunctionArn",
        "RenderSegmentFunctionArn",
        "JoinVideoFunctionArn",
        "EndpointName",
        "InputBucket",
        "OutputBucket",
        "ErrorsPrefix",
    }
)
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def definition_template() -> str:
    """The ASL file as stored, placeholders and all."""
    return resources.files("posepipe.cloud").joinpath(DEFINITION_FILE).read_text(encoding="utf-8")


def render_definition(substitutions: Mapping[str, str]) -> str:
    """The definition with every placeholder replaced; unknown or missing names are errors."""
    unknown = set(substitutions) - PLACEHOLDERS
    missing = PLACEHOLDERS - set(substitutions)
    if unknown or missing:
        raise ValueError(f"placeholders: unknown {sorted(unknown)}, missing {sorted(missing)}")
    return _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], definition_template())
