"""The local stack: the pipeline's AWS services on one machine (moto, and small servers for what
moto cannot run without Docker: Lambda functions and the SageMaker runtime API)."""
