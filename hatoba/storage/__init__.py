"""Storage: content store (blobs by sha256), layer tar apply and diff, overlayfs snapshots, container archives.

Modules: ``atomic`` (crash-safe file writes), ``content`` (blob store),
``mount`` (mount(2)/umount2(2) via ctypes), ``layers`` (layer tar apply/diff,
``docker diff``, tree tars), ``archive`` (``docker cp``), ``snapshots``
(per-chain-id layer dirs and container root filesystems).
"""
