"""One module per command: each orchestrates its action and returns an exit code."""
