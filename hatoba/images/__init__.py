"""Images: references, image records and tags, import, base-image bootstrap."""
