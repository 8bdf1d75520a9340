"""Validation of what clients send, in dockerd's words: JSON bodies (`jsonload`, `engine`), query strings
(`query`) and image configs (`image`). A bottom-layer package: stdlib, `hatoba.errors` and fastjsonschema."""
