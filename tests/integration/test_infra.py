"""The CDK app (infra/): what `cdk deploy` would create, checked offline on the synthesized app.

One default app is synthesized for the session (cdk-nag's AwsSolutions checks run as part of the
synth: any unacknowledged finding fails it); variants with other context are built without
bundling the layer again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match
from posepipe.cloud.state_machine import PLACEHOLDERS, render_definition
from posepipe_infra.app import build_app
from posepipe_infra.layer import layer_requirements
from posepipe_infra.settings import DeploymentSettings, SettingsError

from tests.support.cdkapp import Synthesized, synthesize
from tests.support.paths import REPO

pytestmark = pytest.mark.slow  # synthesizes the CDK app (jsii, Node) and lints its templates

# Lambda: a function's code and its layers unpack to at most 250 MB.
LAMBDA_UNZIPPED_LIMIT = 262_144_000
NO_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}


@pytest.fixture(scope="session")
def variant_app() -> Synthesized:
    """Every setting away from its default."""
    return synthesize(
        {
            **NO_BUNDLING,
            "stackName": "PoseLab",
            "instanceType": "ml.c6i.2xlarge",
            "minEndpointInstances": 2,
            "maxEndpointInstances": 8,
            "maxVideoMinutes": 10,
            "maxImageMegapixels": 12,
            "modelUri": "s3://my-models/pose/model.tar.gz",
            "logRetentionDays": 90,
            "removalPolicy": "destroy",
            "apiAuth": "apikey",
            "waf": "false",
            "alarmEmail": "ops@example.com",
        }
    )


def statements(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    props = resource["Properties"]
    documents = [props["PolicyDocument"]] if "PolicyDocument" in props else []
    documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
    for document in documents:
        yield from document["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policies_of(app: Synthesized, role: Any) -> list[dict[str, Any]]:
    role_id = app.logical_id(role)
    found: list[dict[str, Any]] = []
    for resource in app.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in resource["Properties"]["Roles"]:
            found.extend(statements(resource))
    return found


def s3_grants(app: Synthesized, role: Any) -> set[tuple[str, str, str]]:
    """``(action, bucket logical id, prefix)`` for each object-level S3 grant of ``role``."""
    grants = set()
    for statement in policies_of(app, role):
        for action in as_list(statement["Action"]):
            if not action.startswith("s3:") or action == "s3:ListBucket":
                continue
            for resource in as_list(statement["Resource"]):
                bucket_arn, suffix = resource["Fn::Join"][1]
                grants.add((action, bucket_arn["Fn::GetAtt"][0], suffix))
    return grants


# --- cdk-nag, IAM, cfn-lint ---------------------------------------------------------------------


def test_cdk_nag_passes_and_would_fail_on_an_unacknowledged_finding(default_app: Synthesized) -> None:
    assert default_app.resources  # synthesized, so AwsSolutions found nothing unacknowledged
    app, stack = build_app(NO_BUNDLING)
    s3.Bucket(stack, "CarelessBucket")  # no access logs, no TLS-only policy
    with pytest.raises(Exception, match=r"AwsSolutions-S1|AwsSolutions-S10"):
        app.synth()


def test_every_acknowledgment_is_on_one_resource_with_a_reason(default_app: Synthesized) -> None:
    acknowledged: dict[str, dict[str, str]] = {}
    for construct in default_app.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == "aws:cdk:acknowledged-rules":
                acknowledged.setdefault(construct.node.path, {}).update(entry.data)
    assert len(acknowledged) >= 10
    for path, rules in acknowledged.items():
        assert path.count("/") >= 2, f"{path}: acknowledged on the stack or a whole part, not one resource"
        for rule, reason in rules.items():
            assert len(reason) > 30, f"{path} {rule}: give the reason"
            if "IAM5" in rule:
                assert re.search(r"IAM5\[Resource::.+\]$", rule), f"{path} {rule}: name the resource"
    for scope in (default_app.stack, default_app.stack.node.scope):
        assert scope is not None
        assert not [m for m in scope.node.metadata if m.type == "aws:cdk:acknowledged-rules"]


@pytest.mark.parametrize("which", ["default_app", "variant_app"])
def test_no_wildcard_actions_and_no_full_access_policies(which: str, request: pytest.FixtureRequest) -> None:
    app: Synthesized = request.getfixturevalue(which)
    policies = {**app.of_type("AWS::IAM::Policy"), **app.of_type("AWS::IAM::Role")}
    actions = [a for r in policies.values() for s in statements(r) for a in as_list(s["Action"])]
    assert len(actions) > 40
    assert [a for a in actions if "*" in a] == []
    managed = {
        name: json.dumps(arn)
        for name, role in app.of_type("AWS::IAM::Role").items()
        for arn in role["Properties"].get("ManagedPolicyArns", [])
    }
    assert [m for m in managed.values() if "FullAccess" in m] == []
    for name, arn in managed.items():  # API Gateway's logging role; CDK's auto-delete (removalPolicy=destroy)
        assert (
            "AmazonAPIGatewayPushToCloudWatchLogs" in arn and name.startswith("ApiRestApiCloudWatchRole")
        ) or ("AWSLambdaBasicExecutionRole" in arn and name.startswith("CustomS3AutoDeleteObjects")), (
            name,
            arn,
        )
    assert [
        s for r in policies.values() for s in statements(r) if s.get("Effect") == "Allow" and "NotAction" in s
    ] == []


def test_cfn_lint_finds_no_errors(default_app: Synthesized) -> None:
    templates = sorted(default_app.outdir.glob("*.template.json"))
    assert templates
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--config-file",
            str(REPO / ".cfnlintrc.yaml"),
            *map(str, templates),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stdout + run.stderr


# --- storage --------------------------------------------------------------------------------


def test_buckets_are_encrypted_private_tls_only_and_logged(default_app: Synthesized) -> None:
    storage = default_app.stack.storage
    buckets = default_app.of_type("AWS::S3::Bucket")
    assert len(buckets) == 3
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ] == {"SSEAlgorithm": "AES256"}, name
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, name
        assert bucket["DeletionPolicy"] == "Retain", name
    for policy in default_app.of_type("AWS::S3::BucketPolicy").values():
        denies = [s for s in statements(policy) if s["Effect"] == "Deny"]
        assert {"Bool": {"aws:SecureTransport": "false"}} in [s["Condition"] for s in denies]
    logs_id = default_app.logical_id(storage.access_logs)
    for logged, prefix in ((storage.input_bucket, "input/"), (storage.output_bucket, "output/")):
        props = buckets[default_app.logical_id(logged)]["Properties"]
        assert props["LoggingConfiguration"] == {
            "DestinationBucketName": {"Ref": logs_id},
            "LogFilePrefix": prefix,
        }
    input_props = buckets[default_app.logical_id(storage.input_bucket)]["Properties"]
    assert input_props["VersioningConfiguration"] == {"Status": "Enabled"}
    output_rules = buckets[default_app.logical_id(storage.output_bucket)]["Properties"][
        "LifecycleConfiguration"
    ]["Rules"]
    assert {
        "Id": "expire-work",
        "Prefix": "work/",
        "ExpirationInDays": 7,
        "Status": "Enabled",
    } in output_rules


def test_removal_policy_comes_from_context(variant_app: Synthesized) -> None:
    for bucket in variant_app.of_type("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Delete"
    assert variant_app.of_type("Custom::S3AutoDeleteObjects")


# --- the API --------------------------------------------------------------------------------


def test_api_routes_are_iam_authorized_binary_throttled_and_logged(default_app: Synthesized) -> None:
    methods = default_app.of_type("AWS::ApiGateway::Method")
    routes: dict[str, int] = {}
    for method in methods.values():
        props = method["Properties"]
        assert props["AuthorizationType"] == "AWS_IAM"
        assert props.get("ApiKeyRequired") in (None, False)
        assert "RequestValidatorId" in props
        routes[props["HttpMethod"]] = routes.get(props["HttpMethod"], 0) + 1
    assert routes == {"POST": 3, "GET": 2}  # images, videos, complete; jobs/{id}, videos/{id}/upload
    api = default_app.one("AWS::ApiGateway::RestApi")["Properties"]
    assert set(api["BinaryMediaTypes"]) == {"image/*", "application/octet-stream"}
    stage = default_app.one("AWS::ApiGateway::Stage")["Properties"]
    assert stage["TracingEnabled"] is True
    assert "DestinationArn" in stage["AccessLogSetting"]
    assert "requestId" in stage["AccessLogSetting"]["Format"]
    (settings,) = stage["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == 20
    assert settings["ThrottlingBurstLimit"] == 40
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False
    plan = default_app.one("AWS::ApiGateway::UsagePlan")["Properties"]
    assert plan["Throttle"] == {"BurstLimit": 40, "RateLimit": 20}
    assert plan["Quota"] == {"Limit": 1_000_000, "Period": "MONTH"}
    assert not default_app.of_type("AWS::ApiGateway::ApiKey")
    acl = default_app.one("AWS::WAFv2::WebACL")["Properties"]
    assert [r["Name"] for r in acl["Rules"]] == ["rate-limit-per-ip", "aws-known-bad-inputs"]
    assert default_app.of_type("AWS::WAFv2::WebACLAssociation")
    image_function = default_app.resources[default_app.logical_id(default_app.stack.images.function)]
    environment = image_function["Properties"]["Environment"]["Variables"]
    # API Gateway base64-encodes the body; a Lambda request is at most 6 MB.
    assert int(environment["POSEPIPE_MAX_IMAGE_BYTES"]) * 4 / 3 < 6_000_000 - 100_000
    # Images and videos find everyone, as `posepipe image` and `posepipe video` do: every function
    # that infers or plans names the one detector and pose budget (posepipe.cloud.deployment).
    assert (environment["POSEPIPE_DETECTOR"], environment["POSEPIPE_MAX_POSES"]) == ("centernet", "20")
    detectors = {
        function["Properties"]["Environment"]["Variables"]["POSEPIPE_DETECTOR"]
        for function in default_app.of_type("AWS::Lambda::Function").values()
        if "POSEPIPE_DETECTOR" in function["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert detectors == {"centernet"}


def test_api_key_option(variant_app: Synthesized) -> None:
    for method in variant_app.of_type("AWS::ApiGateway::Method").values():
        assert method["Properties"]["AuthorizationType"] == "NONE"
        assert method["Properties"]["ApiKeyRequired"] is True
    assert variant_app.of_type("AWS::ApiGateway::ApiKey")
    assert variant_app.of_type("AWS::ApiGateway::UsagePlanKey")
    assert not variant_app.of_type("AWS::WAFv2::WebACL")


def test_api_routes_reach_the_right_functions(default_app: Synthesized) -> None:
    stack = default_app.stack
    image_fn = default_app.logical_id(stack.images.function)
    jobs_fn = default_app.logical_id(stack.videos.jobs.function)
    integrations = {}
    resources = default_app.of_type("AWS::ApiGateway::Resource")
    for method in default_app.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        path = resources[props["ResourceId"]["Ref"]]["Properties"]["PathPart"]
        uri = json.dumps(props["Integration"]["Uri"])
        assert props["Integration"]["Type"] == "AWS_PROXY"
        integrations[(props["HttpMethod"], path)] = (
            image_fn if image_fn in uri else jobs_fn if jobs_fn in uri else uri
        )
    assert integrations == {
        ("POST", "images"): image_fn,
        ("POST", "videos"): jobs_fn,
        ("GET", "upload"): jobs_fn,  # /videos/{id}/upload: a multipart upload's state
        ("POST", "complete"): jobs_fn,  # /videos/{id}/complete
        ("GET", "{id}"): jobs_fn,
    }


# --- events ---------------------------------------------------------------------------------


def test_uploads_reach_the_functions_through_eventbridge(default_app: Synthesized) -> None:
    stack = default_app.stack
    input_id = default_app.logical_id(stack.storage.input_bucket)
    notification = default_app.resources[input_id]["Properties"]["NotificationConfiguration"]
    assert notification == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    targets = {}
    for rule in default_app.of_type("AWS::Events::Rule").values():
        props = rule["Properties"]
        pattern = props["EventPattern"]
        assert pattern["source"] == ["aws.s3"]
        assert pattern["detail-type"] == ["Object Created"]
        assert pattern["detail"]["bucket"]["name"] == [{"Ref": input_id}]
        ((prefix,),) = [[k["prefix"] for k in pattern["detail"]["object"]["key"]]]
        (target,) = props["Targets"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 4
        assert "DeadLetterConfig" in target
        targets[prefix] = target["Arn"]["Fn::GetAtt"][0]
    assert targets == {
        "images/": default_app.logical_id(stack.images.function),
        "videos/": default_app.logical_id(stack.videos.jobs.function),
    }


def test_a_function_error_after_lambda_s_retries_reaches_failure_records(default_app: Synthesized) -> None:
    """Lambda's on-failure destination of both asynchronous functions is the queue that
    failure_records reads (partial batch failures), with a dead-letter queue of its own; the
    function may write error records and nothing else in the buckets."""
    stack = default_app.stack
    queue = default_app.logical_id(stack.failures.queue)
    configs = {
        c["Properties"]["FunctionName"]["Ref"]: c["Properties"]
        for c in default_app.of_type("AWS::Lambda::EventInvokeConfig").values()
    }
    assert set(configs) == {
        default_app.logical_id(stack.images.function), default_app.logical_id(stack.videos.jobs.function)
    }  # fmt: skip
    for props in configs.values():
        assert props["MaximumRetryAttempts"] == 2
        assert props["MaximumEventAgeInSeconds"] == 6 * 3600
        assert props["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [queue, "Arn"]}
    (mapping,) = default_app.of_type("AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}
    function = default_app.logical_id(stack.failures.built.function)
    assert mapping["Properties"]["FunctionName"] == {"Ref": function}
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    redrive = default_app.resources[queue]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {
        "Fn::GetAtt": [default_app.logical_id(stack.failures.dead_letters), "Arn"]
    }
    output = default_app.logical_id(stack.storage.output_bucket)
    assert s3_grants(default_app, stack.failures.built.role) == {("s3:PutObject", output, "/errors/*")}


# --- the state machine ----------------------------------------------------------------------


def resolve_tokens(value: Any) -> str:
    """A CloudFormation string expression, each Ref/GetAtt as ``<Ref:Id>``/``<GetAtt:Id.Attr>``."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(resolve_tokens(part) for part in parts)
    if "Ref" in value:
        return f"<Ref:{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<GetAtt:{'.'.join(value['Fn::GetAtt'])}>"
    raise AssertionError(f"unexpected expression {value}")


def test_state_machine_is_the_asl_file_after_substitution(default_app: Synthesized, tmp_path: Path) -> None:
    stack = default_app.stack
    resource = default_app.one("AWS::StepFunctions::StateMachine")
    machine = resource["Properties"]
    # the definition is the ASL file itself, uploaded as an asset, with CloudFormation substitutions
    definition_file = default_app.outdir / f"asset.{machine['DefinitionS3Location']['Key']}"
    template_text = definition_file.read_text()
    assert template_text == (REPO / "layers/posepipe/cloud/video_pipeline.asl.json").read_text()
    deployed_values = {
        name: resolve_tokens(value) for name, value in machine["DefinitionSubstitutions"].items()
    }
    deployed = render_definition(deployed_values)
    endpoint_id = stack.resolve(stack.get_logical_id(stack.endpoint.endpoint))
    substitutions = {
        "VideoSplitFunctionArn": f"<GetAtt:{default_app.logical_id(stack.videos.split.function)}.Arn>",
        "AggregateFunctionArn": f"<GetAtt:{default_app.logical_id(stack.videos.aggregate.function)}.Arn>",
        "RenderSegmentFunctionArn": f"<GetAtt:{default_app.logical_id(stack.videos.render.function)}.Arn>",
        "JoinVideoFunctionArn": f"<GetAtt:{default_app.logical_id(stack.videos.join.function)}.Arn>",
        "EndpointName": f"<GetAtt:{endpoint_id}.EndpointName>",
        "InputBucket": f"<Ref:{default_app.logical_id(stack.storage.input_bucket)}>",
        "OutputBucket": f"<Ref:{default_app.logical_id(stack.storage.output_bucket)}>",
        "ErrorsPrefix": "errors/",
    }
    assert set(substitutions) == PLACEHOLDERS
    assert json.loads(deployed) == json.loads(render_definition(substitutions))
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert "InferChunksFromManifest" in json.loads(deployed)["States"]  # the Distributed Map
    # asl-validator on the definition as deployed (placeholders filled with ARN-shaped values)
    concrete = deployed
    for token in set(re.findall(r"<[^<>]+>", deployed)):
        concrete = concrete.replace(token, "arn:aws:lambda:us-east-1:123456789012:function:x")
    (tmp_path / "definition.json").write_text(concrete)
    run = subprocess.run(
        [
            str(REPO / "node_modules" / ".bin" / "asl-validator"),
            "--json-path",
            str(tmp_path / "definition.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "is valid" in run.stdout


def test_state_machine_role_reaches_what_the_definition_uses(default_app: Synthesized) -> None:
    stack = default_app.stack
    role = stack.videos.state_machine.role
    granted = {a for s in policies_of(default_app, role) for a in as_list(s["Action"])}
    assert {
        "lambda:InvokeFunction",
        "sagemaker:InvokeEndpoint",
        "s3:GetObject",
        "s3:PutObject",
        "states:StartExecution",
        "states:DescribeExecution",
        "states:StopExecution",
    } <= granted
    output = default_app.logical_id(stack.storage.output_bucket)
    assert s3_grants(default_app, role) == {
        ("s3:GetObject", output, "/work/*"),
        ("s3:PutObject", output, "/errors/*"),
    }


# --- the endpoint ---------------------------------------------------------------------------


def test_endpoint_instance_type_and_autoscaling(default_app: Synthesized, variant_app: Synthesized) -> None:
    for app, instance_type, low, high in (
        (default_app, "ml.g5.xlarge", 1, 4),
        (variant_app, "ml.c6i.2xlarge", 2, 8),
    ):
        (variant,) = app.one("AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"]
        assert variant["InstanceType"] == instance_type
        assert variant["InitialInstanceCount"] == low
        target = app.one("AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
        assert (target["MinCapacity"], target["MaxCapacity"]) == (low, high)
        assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
        assert "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in json.dumps(target["RoleARN"])
        policy = app.one("AWS::ApplicationAutoScaling::ScalingPolicy")["Properties"]
        tracking = policy["TargetTrackingScalingPolicyConfiguration"]
        assert (
            tracking["PredefinedMetricSpecification"]["PredefinedMetricType"]
            == "SageMakerVariantConcurrentRequestsPerModelHighResolution"
        )
        assert tracking["TargetValue"] == 3.0  # of the 4 invocations a g5.xlarge's server admits
    # an instance type with an EBS volume gets a KMS key; g5 (local NVMe) cannot take one
    assert "KmsKeyId" not in default_app.one("AWS::SageMaker::EndpointConfig")["Properties"]
    assert "KmsKeyId" in variant_app.one("AWS::SageMaker::EndpointConfig")["Properties"]


def test_endpoint_role_reads_videos_and_writes_work_only(default_app: Synthesized) -> None:
    stack = default_app.stack
    grants = s3_grants(default_app, stack.endpoint.role)
    assert grants == {
        ("s3:GetObject", default_app.logical_id(stack.storage.input_bucket), "/videos/*"),
        ("s3:PutObject", default_app.logical_id(stack.storage.output_bucket), "/work/*"),
        (
            "s3:GetObject",
            default_app.logical_id(stack.storage.output_bucket),
            "/work/*",
        ),  # repairs' agree_with
    }
    variant = default_app.one("AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"][0]
    assert variant["InferenceAmiVersion"] == "al2-ami-sagemaker-inference-gpu-3-1"  # driver 550, CUDA 12.4
    model = default_app.one("AWS::SageMaker::Model")["Properties"]
    assert "ModelDataUrl" not in model["PrimaryContainer"]  # the model built into the image


def test_model_uri_reaches_the_endpoint_and_the_functions(variant_app: Synthesized) -> None:
    uri = "s3://my-models/pose/model.tar.gz"
    model = variant_app.one("AWS::SageMaker::Model")["Properties"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == uri
    stack = variant_app.stack
    function = variant_app.resources[variant_app.logical_id(stack.images.built.function)]
    assert function["Properties"]["Environment"]["Variables"]["POSEPIPE_MODEL_URI"] == uri
    reads = [json.dumps(s["Resource"]) for s in policies_of(variant_app, stack.images.built.role)]
    assert any("my-models/pose/model.tar.gz" in r for r in reads)
    # the aggregate's boundary repairs run on the endpoint: it reads no model, it invokes the endpoint
    aggregate = variant_app.resources[variant_app.logical_id(stack.videos.aggregate.function)]
    assert "POSEPIPE_MODEL_URI" not in aggregate["Properties"]["Environment"]["Variables"]
    statements = policies_of(variant_app, stack.videos.aggregate.role)
    assert not any("my-models" in json.dumps(s["Resource"]) for s in statements)
    assert any(s["Action"] == "sagemaker:InvokeEndpoint" for s in statements)


# --- functions, layer, sizes ----------------------------------------------------------------


def test_functions_settings(default_app: Synthesized, variant_app: Synthesized) -> None:
    stack = default_app.stack
    functions = {
        name: default_app.resources[default_app.logical_id(built.function)]["Properties"]
        for name, built in (
            ("image_infer", stack.images.built),
            ("video_split", stack.videos.split),
            ("aggregate", stack.videos.aggregate),
            ("render_segment", stack.videos.render),
            ("join_video", stack.videos.join),
            ("video_jobs", stack.videos.jobs),
            ("failure_records", stack.failures.built),
        )
    }
    for name, props in functions.items():
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert "LoggingConfig" in props, name
        variables = props["Environment"]["Variables"]
        assert variables["POSEPIPE_MAX_VIDEO_SECONDS"] == "10800", name
        assert variables["POSEPIPE_MAX_VIDEO_PIXELS"] == str(3840 * 2160), name
        assert variables["POSEPIPE_MAX_IMAGE_PIXELS"] == "40000000", name
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "posepipe", name
        assert variables["POSEPIPE_CHUNK_SECONDS"] == "60", name
        assert variables["POSEPIPE_INVOCATION_SECONDS"] == "20", name
        assert variables["POSEPIPE_DETECTOR"] == "centernet", name
    for name in ("image_infer", "aggregate", "render_segment", "join_video"):
        assert functions[name]["PackageType"] == "Image"
        assert functions[name]["ImageConfig"]["Command"] == [f"{name}.app.handler"]
    for name in ("video_split", "video_jobs", "failure_records"):
        assert functions[name]["Runtime"] == "python3.13"
        assert functions[name]["Handler"] == "app.handler"
        assert len(functions[name]["Layers"]) == 1
    for name in ("aggregate", "render_segment", "join_video"):
        assert functions[name]["Timeout"] == 900, name
    assert "POSEPIPE_STATE_MACHINE_ARN" in functions["video_jobs"]["Environment"]["Variables"]
    variant = variant_app.stack
    split = variant_app.resources[variant_app.logical_id(variant.videos.split.function)]["Properties"]
    assert split["Environment"]["Variables"]["POSEPIPE_MAX_VIDEO_SECONDS"] == "600"
    assert split["Environment"]["Variables"]["POSEPIPE_MAX_IMAGE_PIXELS"] == "12000000"
    for group in variant_app.of_type("AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == 90


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_layer_and_function_assets_fit_lambda(default_app: Synthesized) -> None:
    stack = default_app.stack
    layer = default_app.one("AWS::Lambda::LayerVersion")
    layer_dir = default_app.outdir / layer["Metadata"]["aws:asset:path"]
    python = layer_dir / "python"
    names = {p.name for p in python.iterdir()}
    assert {"posepipe", "av", "numpy", "aws_lambda_powertools", "pydantic"} <= names
    assert not names & {"cv2", "mediapipe", "matplotlib", "boto3", "botocore"}
    assert (python / "posepipe" / "cloud" / "video_pipeline.asl.json").exists()
    assert not (python / "posepipe" / "cloud" / "local").exists()
    for requirement in layer_requirements():
        name, version = requirement.split("==")
        dist = re.sub(r"[-.]", "_", name).lower()
        assert any(p.name.lower() == f"{dist}-{version}.dist-info" for p in python.iterdir()), requirement
    assert not list(python.rglob("__pycache__"))
    layer_bytes = folder_bytes(layer_dir)
    for built in (stack.videos.split, stack.videos.jobs):
        function = default_app.resources[default_app.logical_id(built.function)]
        code_dir = default_app.outdir / function["Metadata"]["aws:asset:path"]
        assert sorted(p.name for p in code_dir.iterdir()) == ["app.py"]
        total = layer_bytes + folder_bytes(code_dir)
        assert total < LAMBDA_UNZIPPED_LIMIT, f"{total / 1e6:.0f} MB unzipped"
    assert layer_bytes > 50_000_000  # the real wheels, not an empty layer


def test_container_contexts_hold_only_what_the_dockerfiles_copy(default_app: Synthesized) -> None:
    assets = json.loads(next(default_app.outdir.glob("*.assets.json")).read_text())["dockerImages"]
    assert len(assets) == 2  # one image for both MediaPipe functions, one for the endpoint
    for asset in assets.values():
        context = default_app.outdir / asset["source"]["directory"]
        top = {p.name for p in context.iterdir()}
        assert top <= {
            "requirements.lock",
            "pyproject.toml",
            "README.md",
            "layers",
            "functions",
            "sagemaker_endpoint",
        }
        assert (context / asset["source"]["dockerFile"]).exists()
        assert folder_bytes(context) < 5_000_000
        assert asset["source"].get("platform") == "linux/amd64"


# --- monitoring -----------------------------------------------------------------------------


def test_dashboard_and_alarms(default_app: Synthesized) -> None:
    body = json.dumps(default_app.one("AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
    for needle in (
        "ExecutionsFailed",
        "ExecutionsStarted",
        "ModelLatency",
        "Invocations",
        "Invocation5XXErrors",
        "Errors",
        "Duration",
        "GPUUtilization",
        "InferenceMs",
        "BoundaryRepairs",
        "VideoSeconds",
    ):
        assert needle in body, needle
    alarms = {
        a["Properties"]["AlarmDescription"]: a["Properties"]
        for a in default_app.of_type("AWS::CloudWatch::Alarm").values()
    }
    failed = alarms["a video job failed (see errors/ in the output bucket)"]
    assert failed["MetricName"] == "ExecutionsFailed"
    assert failed["Threshold"] == 1
    endpoint = alarms["the pose endpoint answered errors"]
    assert {m.get("MetricStat", {}).get("Metric", {}).get("MetricName") for m in endpoint["Metrics"]} >= {
        "Invocation4XXErrors",
        "Invocation5XXErrors",
    }
    for alarm in alarms.values():
        assert alarm["AlarmActions"], "every alarm notifies the topic"


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"instanceType": "g5.xlarge"}, "instanceType: 'g5.xlarge' is not a SageMaker instance type"),
        ({"minEndpointInstances": "0"}, "minEndpointInstances: 0 is outside 1..100"),
        ({"minEndpointInstances": 3, "maxEndpointInstances": 2}, "maxEndpointInstances (2) is below"),
        ({"logRetentionDays": 10}, "logRetentionDays: 10 is not a CloudWatch Logs retention"),
        ({"removalPolicy": "snapshot"}, "removalPolicy: 'snapshot' is not one of retain, destroy"),
        ({"apiAuth": "cognito"}, "apiAuth: 'cognito' is not one of iam, apikey"),
        (
            {"modelUri": "https://example.com/model.task"},
            "modelUri: 'https://example.com/model.task' is not an s3://",
        ),
        (
            {"modelUri": "s3://my-models/pose/model.task"},
            "modelUri: 's3://my-models/pose/model.task' is not an s3://bucket/key URI of a model.tar.gz",
        ),
        ({"maxVideoMinutes": "ten"}, "maxVideoMinutes: 'ten' is not an integer"),
    ],
)
def test_bad_context_is_refused_with_the_setting_named(context: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        DeploymentSettings.from_context(context.get)
    assert str(caught.value).startswith(message)


def test_cdk_app_exits_with_one_line_on_bad_context() -> None:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"apiAuth": "open"}), "CDK_OUTDIR": "/nonexistent"}
    run = subprocess.run(
        [sys.executable, str(REPO / "infra" / "app.py")], capture_output=True, text=True, check=False, env=env
    )
    assert run.returncode == 2
    assert run.stderr.strip() == "posepipe: apiAuth: 'open' is not one of iam, apikey"


def test_stack_name_sets_the_resource_names(variant_app: Synthesized) -> None:
    assert variant_app.stack.stack_name == "PoseLab"
    assert variant_app.one("AWS::SageMaker::Endpoint")["Properties"]["EndpointName"] == "PoseLab-pose"
    assert (
        variant_app.one("AWS::StepFunctions::StateMachine")["Properties"]["StateMachineName"]
        == "PoseLab-video"
    )


def test_template_assertions_api(default_app: Synthesized) -> None:
    """The same facts through aws_cdk.assertions' matchers (resource counts and key properties)."""
    template = default_app.template
    template.resource_count_is("AWS::Lambda::Function", 7)
    template.resource_count_is("AWS::S3::Bucket", 3)
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {"VersioningConfiguration": {"Status": "Enabled"}, "NotificationConfiguration": Match.any_value()},
    )
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like({"InstanceType": "ml.g5.xlarge", "VariantName": "AllTraffic"})
            ]
        },
    )
    template.has_resource_properties(
        "AWS::ApiGateway::RestApi", {"BinaryMediaTypes": Match.array_with(["image/*"])}
    )


def test_container_functions_match_the_dockerfile(default_app: Synthesized) -> None:
    """Each container function's CMD names a module the image has: ``COPY functions/<name>/app.py
    /var/task/<name>/app.py``, and the build context lets that file in."""
    dockerfile = (REPO / "functions" / "Dockerfile").read_text()
    ignore = (REPO / "functions" / "Dockerfile.dockerignore").read_text().splitlines()
    commands = [
        function["Properties"]["ImageConfig"]["Command"]
        for function in default_app.of_type("AWS::Lambda::Function").values()
        if function["Properties"].get("PackageType") == "Image"
    ]
    assert sorted(commands) == [
        ["aggregate.app.handler"], ["image_infer.app.handler"], ["join_video.app.handler"],
        ["render_segment.app.handler"],
    ]  # fmt: skip
    for (command,) in commands:
        name = command.split(".")[0]
        assert f"COPY functions/{name}/app.py /var/task/{name}/app.py" in dockerfile
        assert f"!functions/{name}/app.py" in ignore
        assert (REPO / "functions" / name / "app.py").exists()
    assert 'ENTRYPOINT ["python", "-m", "awslambdaric"]' in dockerfile
    pins = (REPO / "functions" / "lambda-image.txt").read_text()
    assert re.search(r"^awslambdaric==\d+\.\d+\.\d+$", pins, re.MULTILINE)
