"""Stand-in for the get-pip bootstrap script ansible-test downloads from a host this machine
cannot reach: bootstrap pip from Python's own ensurepip, then `pip install` what ansible-test
asks for (the pinned pip, from PyPI). get-pip's own flags have no pip equivalent: drop them."""

import ensurepip
import os
import subprocess
import sys

GET_PIP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel"}

config_file = os.environ.get("PIP_CONFIG_FILE")
ensurepip.bootstrap(upgrade=True)
# ensurepip points PIP_CONFIG_FILE at /dev/null, which would hide this machine's pip settings.
if config_file is None:
    os.environ.pop("PIP_CONFIG_FILE", None)
else:
    os.environ["PIP_CONFIG_FILE"] = config_file
arguments = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_FLAGS]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *arguments]))
