import sys

from realtime_pose.cli import main

sys.exit(main())
