"""Least-privilege IAM helpers and the cdk-nag acknowledgments they need, each on one resource.

Roles here get no managed policies and no wildcard actions: each statement names its actions and
its resources. Object access is granted per key prefix; cdk-nag reports every prefix wildcard
(``bucket/images/*``) as a finding, so each grant acknowledges exactly its own finding, with why.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct

XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding (``AwsSolutions-IAM5[Resource::...]``) on ``scope``."""
    Validations.of(scope).acknowledge(Acknowledgment(id=finding, reason=reason))


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id of an L2 construct's resource, as cdk-nag prints it."""
    resource = construct.node.default_child
    assert resource is not None, f"{construct.node.path} has no CloudFormation resource"
    stack = Stack.of(construct)
    return str(stack.resolve(stack.get_logical_id(resource)))  # type: ignore[arg-type]


def service_role(scope: Construct, construct_id: str, service: str, description: str) -> iam.Role:
    return iam.Role(scope, construct_id, assumed_by=iam.ServicePrincipal(service), description=description)


def allow_logging(role: iam.Role, log_group: logs.ILogGroup) -> None:
    """Write to one log group (the role's function's own)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
        )
    )


def allow_tracing(role: iam.Role) -> None:
    """X-Ray segments: the service has no resource-level permissions, hence ``*``."""
    role.add_to_principal_policy(iam.PolicyStatement(actions=list(XRAY_ACTIONS), resources=["*"]))
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions",
    )


def allow_objects(role: iam.Role, bucket: s3.IBucket, prefix: str, actions: Sequence[str], why: str) -> None:
    """``actions`` on the objects under ``prefix`` of ``bucket``, and nothing else."""
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=list(actions), resources=[bucket.arn_for_objects(f"{prefix}*")])
    )
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::<{logical_id(bucket)}.Arn>/{prefix}*]",
        f"objects under {prefix} only (keys are per upload): {why}",
    )


def allow_listing(role: iam.Role, bucket: s3.IBucket, prefixes: Sequence[str]) -> None:
    """``s3:ListBucket`` limited to ``prefixes``: without it a missing key reads as 403, not 404."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
        )
    )
