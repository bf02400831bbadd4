"""Domain services: the use cases the Lambda handlers call."""
