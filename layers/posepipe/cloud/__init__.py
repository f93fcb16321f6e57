"""The AWS side of posepipe: configuration, key layout and S3 I/O shared by the Lambdas, the
SageMaker endpoint server and the local stack. The domain code (``posepipe.*``) stays AWS-free."""
