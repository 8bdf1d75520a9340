"""One module per group of CLI commands; each `cmd_*` takes argv and returns an exit status."""
