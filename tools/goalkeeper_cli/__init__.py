"""The `goalkeeper` command and the local stack: tools for a developer's or an
operator's machine, installed from this repository and never deployed (template.yaml
builds the Lambda layer from shared/ alone)."""
