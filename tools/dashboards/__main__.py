import sys

from tools.dashboards.generate import main

sys.exit(main())
