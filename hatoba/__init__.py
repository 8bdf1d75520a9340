"""hatoba: a Docker-compatible container engine. The package version lives here."""
__version__ = "0.1.0"
