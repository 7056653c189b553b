"""`python -m host_app ...` is `host-app ...`."""
import sys

from .cli import main

sys.exit(main())
