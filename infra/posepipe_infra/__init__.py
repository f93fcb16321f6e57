"""posepipe's AWS CDK app (infra/app.py): the stack and its constructs."""
