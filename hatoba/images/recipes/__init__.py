"""Base-image recipes built from Debian packages with mmdebstrap (see hatoba.images.bootstrap)."""
