"""The hatoba CLI: argument parsing, tables, Go templates, progress. Talks to the daemon only through hatoba.client."""
