"""`python -m orchestrator VERB [OVERRIDES]`: the same entry point as the `orchestrate` script."""

from orchestrator.cli import main

if __name__ == "__main__":
    main()
