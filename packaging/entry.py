"""Entry point for the one-file executable built by packaging/build."""

import multiprocessing

from agentdash.cli import main

if __name__ == "__main__":
    # The OTLP translate workers are spawned processes: in a frozen executable they re-run this file, and
    # freeze_support hands them to multiprocessing instead of starting the CLI again.
    multiprocessing.freeze_support()
    main()
