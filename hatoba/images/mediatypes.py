"""OCI and Docker media types, the one place they are spelled: manifests, indexes, configs and
layers, and the groups the registry client, save/load and the hub sort them into."""

from __future__ import annotations

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_NONDIST_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_NONDIST_LAYER_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_NONDIST_LAYER_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
RAW_STREAM = "application/vnd.docker.raw-stream"  # a hijacked attach/exec stream

ACCEPT = (OCI_MANIFEST, DOCKER_MANIFEST, DOCKER_LIST, OCI_INDEX, SCHEMA1_SIGNED, SCHEMA1)
MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
LAYER_TYPES = (DOCKER_LAYER, DOCKER_FOREIGN_LAYER, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
               OCI_NONDIST_LAYER, OCI_NONDIST_LAYER_GZIP, OCI_NONDIST_LAYER_ZSTD)
GZIP_LAYER_TYPES = (DOCKER_LAYER, OCI_LAYER_GZIP, DOCKER_FOREIGN_LAYER, OCI_NONDIST_LAYER_GZIP)
