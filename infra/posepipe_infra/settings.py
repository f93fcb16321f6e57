"""The deployment's settings: CDK context values (``cdk deploy -c name=value`` or ``cdk.json``).

Every value has a default that deploys a working, secure system; a bad value stops the synth
with one line naming the setting and what it accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from aws_cdk import RemovalPolicy
from aws_cdk.aws_logs import RetentionDays

T = TypeVar("T")

# CloudWatch Logs' allowed retention periods, in days.
RETENTION_DAYS = {
    1: RetentionDays.ONE_DAY, 3: RetentionDays.THREE_DAYS, 5: RetentionDays.FIVE_DAYS,
    7: RetentionDays.ONE_WEEK, 14: RetentionDays.TWO_WEEKS, 30: RetentionDays.ONE_MONTH,
    60: RetentionDays.TWO_MONTHS, 90: RetentionDays.THREE_MONTHS, 120: RetentionDays.FOUR_MONTHS,
    150: RetentionDays.FIVE_MONTHS, 180: RetentionDays.SIX_MONTHS, 365: RetentionDays.ONE_YEAR,
    400: RetentionDays.THIRTEEN_MONTHS, 545: RetentionDays.EIGHTEEN_MONTHS,
    731: RetentionDays.TWO_YEARS, 1827: RetentionDays.FIVE_YEARS, 3653: RetentionDays.TEN_YEARS,
}  # fmt: skip
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
# SageMaker's ModelDataUrl must be a gzip tar; the endpoint checks it against its manifest.
_MODEL_ARCHIVE_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+\.tar\.gz$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,99}$")


class SettingsError(ValueError):
    """A context value the app cannot deploy."""


@dataclass(frozen=True)
class DeploymentSettings:
    """What a deployment may choose; the context key of each field is in :data:`CONTEXT_KEYS`."""

    stack_name: str = "Posepipe"
    instance_type: str = "ml.g5.xlarge"
    min_endpoint_instances: int = 1
    max_endpoint_instances: int = 4
    concurrent_requests_per_instance: int = 3
    max_video_minutes: int = 180
    max_image_megapixels: int = 40
    model_uri: str = ""
    log_retention_days: int = 30
    removal_policy: str = "retain"
    api_auth: str = "iam"
    waf: bool = True
    work_expiry_days: int = 7
    alarm_email: str = ""

    @property
    def removal(self) -> RemovalPolicy:
        return RemovalPolicy.DESTROY if self.removal_policy == "destroy" else RemovalPolicy.RETAIN

    @property
    def log_retention(self) -> RetentionDays:
        return RETENTION_DAYS[self.log_retention_days]

    @property
    def max_video_seconds(self) -> int:
        return self.max_video_minutes * 60

    @property
    def max_image_pixels(self) -> int:
        return self.max_image_megapixels * 1_000_000

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> DeploymentSettings:
        """Read every setting with ``get(context_key)`` (``app.node.try_get_context``); None: default."""
        base = cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = get(CONTEXT_KEYS[f.name])
            if raw is None:
                continue
            values[f.name] = _PARSERS[f.name](CONTEXT_KEYS[f.name], raw)
        settings = cls(**{**{f.name: getattr(base, f.name) for f in fields(cls)}, **values})
        settings.check()
        return settings

    def check(self) -> None:
        """The relations between settings."""
        if self.max_endpoint_instances < self.min_endpoint_instances:
            raise SettingsError(
                f"maxEndpointInstances ({self.max_endpoint_instances}) is below "
                f"minEndpointInstances ({self.min_endpoint_instances})"
            )


CONTEXT_KEYS: Mapping[str, str] = {
    "stack_name": "stackName",
    "instance_type": "instanceType",
    "min_endpoint_instances": "minEndpointInstances",
    "max_endpoint_instances": "maxEndpointInstances",
    "concurrent_requests_per_instance": "concurrentRequestsPerInstance",
    "max_video_minutes": "maxVideoMinutes",
    "max_image_megapixels": "maxImageMegapixels",
    "model_uri": "modelUri",
    "log_retention_days": "logRetentionDays",
    "removal_policy": "removalPolicy",
    "api_auth": "apiAuth",
    "waf": "waf",
    "work_expiry_days": "workExpiryDays",
    "alarm_email": "alarmEmail",
}


def _integer(low: int, high: int) -> Callable[[str, Any], int]:
    def parse(key: str, raw: Any) -> int:
        try:
            value = int(str(raw), 10)
        except ValueError:
            raise SettingsError(f"{key}: {raw!r} is not an integer") from None
        if not low <= value <= high:
            raise SettingsError(f"{key}: {value} is outside {low}..{high}")
        return value

    return parse


def _pattern(pattern: re.Pattern[str], what: str) -> Callable[[str, Any], str]:
    def parse(key: str, raw: Any) -> str:
        value = str(raw).strip()
        if value and not pattern.match(value):
            raise SettingsError(f"{key}: {raw!r} is not {what}")
        return value

    return parse


def _choice(*choices: str) -> Callable[[str, Any], str]:
    def parse(key: str, raw: Any) -> str:
        value = str(raw).strip().lower()
        if value not in choices:
            raise SettingsError(f"{key}: {raw!r} is not one of {', '.join(choices)}")
        return value

    return parse


def _boolean(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in {"true", "1", "yes", "on"}:
        return True
    if value in {"false", "0", "no", "off"}:
        return False
    raise SettingsError(f"{key}: {raw!r} is not true or false")


def _retention(key: str, raw: Any) -> int:
    value = _integer(1, 3653)(key, raw)
    if value not in RETENTION_DAYS:
        raise SettingsError(f"{key}: {value} is not a CloudWatch Logs retention ({sorted(RETENTION_DAYS)})")
    return value


def _stack_name(key: str, raw: Any) -> str:
    value = _pattern(_STACK_NAME, "a CloudFormation stack name (letters, digits, '-')")(key, raw)
    if not value:
        raise SettingsError(f"{key}: empty")
    if len(value) > 40:  # names derived from it (endpoint, state machine) must stay within AWS limits
        raise SettingsError(f"{key}: {value!r} is longer than 40 characters")
    return value


_PARSERS: Mapping[str, Callable[[str, Any], Any]] = {
    "stack_name": _stack_name,
    "instance_type": _pattern(_INSTANCE_TYPE, "a SageMaker instance type such as ml.g5.xlarge"),
    "min_endpoint_instances": _integer(1, 100),
    "max_endpoint_instances": _integer(1, 100),
    "concurrent_requests_per_instance": _integer(1, 1000),
    "max_video_minutes": _integer(1, 180),  # 3 hours: the render Map draws any length in parallel
    "max_image_megapixels": _integer(1, 400),
    "model_uri": _pattern(_MODEL_ARCHIVE_URI, "an s3://bucket/key URI of a model.tar.gz"),
    "log_retention_days": _retention,
    "removal_policy": _choice("retain", "destroy"),
    "api_auth": _choice("iam", "apikey"),
    "waf": _boolean,
    "work_expiry_days": _integer(1, 365),
    "alarm_email": _pattern(_EMAIL, "an e-mail address"),
}
