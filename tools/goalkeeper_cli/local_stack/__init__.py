"""The local stack: the deployed shape, run on one machine with no AWS account."""
