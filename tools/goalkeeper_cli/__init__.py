"""The `goalkeeper` command and the local stack: tools for a developer's or an
operator's machine, installed from this repository and never deployed (template.yaml
builds the Lambda layer from shared/ alone)."""

from pathlib import Path

# The package is installed editable from the repository: template.yaml, functions/ and
# the local stack's state (.goalkeeper/) are found two levels above goalkeeper_cli/.
REPO_ROOT = Path(__file__).resolve().parents[2]
