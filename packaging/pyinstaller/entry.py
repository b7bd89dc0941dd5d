"""Entry point of the self-contained bundle: one executable, two names.

``docker-credential-ecr-login`` is the credential helper; ``ecr-credential-provider`` (a symlink to
it, or a copy) is the kubelet plugin, as the two console scripts of the wheel.
"""

from __future__ import annotations

import os
import sys

from docker_credential_ecr.cli import kubelet_main, main

if __name__ == "__main__":
    name = os.path.basename(sys.argv[0] if sys.argv else "")
    sys.exit(kubelet_main() if name.startswith("ecr-credential-provider") else main())
