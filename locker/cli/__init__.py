"""The command-line front end: the parser, one handler module per command group, prompts.
Maps every error to its exit code."""
