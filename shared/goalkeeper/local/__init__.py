"""The local stack: the deployed shape, run in one process with no AWS account."""
