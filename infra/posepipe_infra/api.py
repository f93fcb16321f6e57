"""The REST API: ``POST /images`` (image_infer), ``POST /videos``, ``GET /videos/{id}/upload``,
``POST /videos/{id}/complete`` and ``GET /jobs/{id}`` (video_jobs).

IAM authorization (SigV4) on every method by default, or API keys (``apiAuth=apikey``); binary
media types for images; request validation; stage throttling and a usage plan with a quota;
JSON access logs, execution logs and X-Ray; a WAF web ACL (rate limit per client, AWS's known
bad inputs) unless ``waf=false``. Request size: API Gateway's own 10 MB, and the image function
refuses bodies over ``MAX_IMAGE_BYTES`` (4 MiB: a Lambda request is at most 6 MB once the body is
base64-encoded) with a 413 JSON error.
"""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from posepipe_infra.security import acknowledge
from posepipe_infra.settings import DeploymentSettings

STAGE = "v1"
BINARY_MEDIA_TYPES = ["image/*", "application/octet-stream"]
RATE_LIMIT_PER_SECOND = 20
BURST_LIMIT = 40
MONTHLY_QUOTA = 1_000_000
WAF_REQUESTS_PER_5_MINUTES = 2000


class Api(Construct):
    """``api`` (the RestApi) and, with ``apiAuth=apikey``, ``api_key``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploymentSettings,
        image_function: lambda_.IFunction,
        video_jobs_function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        use_keys = settings.api_auth == "apikey"
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=settings.log_retention, removal_policy=settings.removal
        )
        method_options = apigw.MethodOptions(
            authorization_type=apigw.AuthorizationType.NONE if use_keys else apigw.AuthorizationType.IAM,
            api_key_required=use_keys,
        )
        self.api = api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{settings.stack_name}-api",
            description="posepipe: POST /images, POST /videos, GET /jobs/{id}",
            binary_media_types=BINARY_MEDIA_TYPES,
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=settings.removal,
            default_method_options=method_options,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=RATE_LIMIT_PER_SECOND,
                throttling_burst_limit=BURST_LIMIT,
            ),
        )
        acknowledge(
            api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "the account-level role API Gateway writes execution logs with; this AWS policy is the one its "
            "documentation names (logs only, no FullAccess)",
        )
        # Parameters as declared per method; bodies (images, a small JSON object) have no model: the
        # functions check them and answer a JSON error naming the problem.
        parameters = api.add_request_validator(
            "Validator", validate_request_parameters=True, validate_request_body=True
        )

        images = api.root.add_resource("images")
        images.add_method(
            "POST",
            apigw.LambdaIntegration(image_function),
            request_validator=parameters,
            request_parameters={
                "method.request.querystring.annotate": False,
                "method.request.querystring.max_poses": False,
            },
        )
        videos = api.root.add_resource("videos")
        jobs_integration = apigw.LambdaIntegration(video_jobs_function)
        # The function reads the name from a JSON body or ?filename=, as under `posepipe serve`.
        videos.add_method(
            "POST",
            jobs_integration,
            request_validator=parameters,
            request_parameters={"method.request.querystring.filename": False},
        )
        # A multipart upload (a video over 100 MB): its state and fresh part URLs, its completion.
        upload_job = videos.add_resource("{id}")
        upload_job.add_resource("upload").add_method(
            "GET",
            jobs_integration,
            request_validator=parameters,
            request_parameters={"method.request.path.id": True},
        )
        upload_job.add_resource("complete").add_method(
            "POST",
            jobs_integration,
            request_validator=parameters,
            request_parameters={"method.request.path.id": True},
        )
        job = api.root.add_resource("jobs").add_resource("{id}")
        job.add_method(
            "GET",
            jobs_integration,
            request_validator=parameters,
            request_parameters={"method.request.path.id": True},
        )

        plan = api.add_usage_plan(
            "UsagePlan",
            name=f"{settings.stack_name}-usage",
            throttle=apigw.ThrottleSettings(rate_limit=RATE_LIMIT_PER_SECOND, burst_limit=BURST_LIMIT),
            quota=apigw.QuotaSettings(limit=MONTHLY_QUOTA, period=apigw.Period.MONTH),
        )
        plan.add_api_stage(stage=api.deployment_stage)
        self.api_key: apigw.IApiKey | None = None
        if use_keys:
            self.api_key = api.add_api_key("ApiKey", api_key_name=f"{settings.stack_name}-key")
            plan.add_api_key(self.api_key)
        for method in api.methods:
            acknowledge(
                method,
                "AwsSolutions-COG4",
                "callers are AWS principals authorized by IAM (SigV4)"
                + (", here with API keys (apiAuth=apikey)" if use_keys else "")
                + "; a Cognito user pool is for end users, which posepipe's API is not",
            )
            if use_keys:
                acknowledge(
                    method,
                    "AwsSolutions-APIG4",
                    "apiAuth=apikey: callers present an API key of the usage plan, not IAM authorization",
                )

        if settings.waf:
            self._web_acl(settings)
        else:
            acknowledge(
                api.deployment_stage,
                "AwsSolutions-APIG3",
                "waf=false was chosen at deploy time; stage throttling and the usage plan still apply",
            )

    def _web_acl(self, settings: DeploymentSettings) -> None:
        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility(f"{settings.stack_name}-api"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="rate-limit-per-ip",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=WAF_REQUESTS_PER_5_MINUTES, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=visibility("rate-limit-per-ip"),
                ),
                wafv2.CfnWebACL.RuleProperty(
                    name="aws-known-bad-inputs",
                    priority=1,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS", name="AWSManagedRulesKnownBadInputsRuleSet"
                        )
                    ),
                    visibility_config=visibility("aws-known-bad-inputs"),
                ),
            ],
        )
        stage = self.api.deployment_stage
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=stage.stage_arn,
            web_acl_arn=acl.attr_arn,
        )
