import sys

from cost_monitor.cli import main

sys.exit(main())
