"""Networking: container network namespaces (loopback only until the bridge driver lands), host and none modes."""
