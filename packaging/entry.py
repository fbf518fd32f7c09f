"""Entry point for the one-file executable built by packaging/build."""

from agentdash.cli import main

if __name__ == "__main__":
    main()
