"""The image side of the engine as the API sees it: listing with filters, inspect, history, tag,
delete, prune, import, save/load, commit and base-image bootstrap, each emitting its events.

`images.store.ImageStore` keeps the records; this adds what needs the containers (which images
are in use) and the events, and turns storage errors into Docker's client errors.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from hatoba.errors import InvalidParameter, NotFound
from hatoba.images import archive, bootstrap, changes, reference
from hatoba.images.store import Image, ImageStore, default_config
from hatoba.storage.layers import LayerError

if TYPE_CHECKING:
    from hatoba.engine.containers import Containers
    from hatoba.engine.events import Events

IMAGE_FILTERS = {"dangling", "label", "before", "since", "reference"}


def _bool_filter(key: str, values: list[str]) -> bool:
    if len(values) != 1 or values[0].lower() not in ("true", "false", "1", "0"):
        raise InvalidParameter(f"Invalid filter '{key}={values[0] if values else ''}'")
    return values[0].lower() in ("true", "1")


class ImageService:
    """The images router's backend."""

    def __init__(self, store: ImageStore, containers: Containers, events: Events):
        self.store = store
        self.containers = containers
        self.events = events

    # ---- reads ----------------------------------------------------------------------------------

    def list(self, *, all_: bool, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        for k in filters:
            if k not in IMAGE_FILTERS:
                raise InvalidParameter(f"invalid filter '{k}'")
        dangling = _bool_filter("dangling", filters["dangling"]) if "dangling" in filters else None
        before = since = None
        if filters.get("before"):
            before = self.store.get(filters["before"][0]).created
        if filters.get("since"):
            since = self.store.get(filters["since"][0]).created
        refs = filters.get("reference", [])
        labels = filters.get("label", [])
        out = []
        for img in sorted(self.store.images.values(), key=lambda i: i.created, reverse=True):
            tags = self.store.tags_of(img.id)
            if dangling is not None and dangling == bool(tags):
                continue
            if before is not None and img.created >= before:
                continue
            if since is not None and img.created <= since:
                continue
            if refs and not any(fnmatch.fnmatch(t, r) or fnmatch.fnmatch(t.rsplit(":", 1)[0], r)
                                for t in tags for r in refs):
                continue
            if labels:
                have = (img.config.get("config") or {}).get("Labels") or {}
                if not isinstance(have, dict) or not all(
                        w.partition("=")[0] in have and (not w.partition("=")[1] or
                                                         have[w.partition("=")[0]] == w.partition("=")[2])
                        for w in labels):
                    continue
            out.append(self.store.summary(img))
        return out

    def get(self, name: str) -> Image:
        return self.store.get(name)

    def inspect(self, name: str) -> dict[str, Any]:
        try:
            img = self.store.get(name)
        except NotFound:
            # dockerd's LookupImage wraps the store's error: "no such image: x: No such image: x:latest"
            try:
                full = name if reference.is_id(name) or name.startswith("sha256:") else reference.familiar(name)
            except InvalidParameter:
                full = name
            raise NotFound(f"no such image: {name}: No such image: {full}") from None
        return self.store.inspect(img)

    def history(self, name: str) -> list[dict[str, Any]]:
        return self.store.history(self.store.get(name))

    # ---- changes --------------------------------------------------------------------------------

    def tag(self, name: str, repo: str, tag: str) -> None:
        if not repo:
            raise InvalidParameter("repository name must have at least one component")
        img = self.store.get(name)
        fam = self.store.tag(img.id, f"{repo}:{tag}" if tag else repo)
        self.events.emit("image", "tag", img.id, {"name": fam})

    def delete(self, name: str, *, force: bool) -> list[dict[str, str]]:
        before = self.store.lookup(name)
        out = self.store.delete(name, force=force, users=self.containers.using_image)
        for item in out:
            if "Untagged" in item:
                self.events.emit("image", "untag", before.id if before else name, {"name": item["Untagged"]})
            else:
                self.events.emit("image", "delete", item["Deleted"], {"name": item["Deleted"]})
        return out

    def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        for k in filters:
            if k not in ("dangling", "label", "label!", "until"):
                raise InvalidParameter(f"invalid filter '{k}'")
        dangling_only = _bool_filter("dangling", filters["dangling"]) if "dangling" in filters else True
        used = {c.image_id for c in self.containers.by_id.values()}
        deleted: list[dict[str, str]] = []
        reclaimed = 0
        for img in list(self.store.images.values()):
            if img.id not in self.store.images or img.id in used:
                continue
            if dangling_only and self.store.tags_of(img.id):
                continue
            size = img.size
            for item in self.delete(img.id, force=True):
                deleted.append(item)
                if item.get("Deleted") == img.id:
                    reclaimed += size
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    async def import_image(self, body: IO[bytes], *, repo: str, tag: str, changes_: list[str],
                           message: str) -> str:
        """`docker import` of a rootfs tar (plain or gzip) read from `body`; returns the image id."""
        tag_ref = None
        if repo:
            tag_ref = f"{repo}:{tag}" if tag else repo
            reference.parse(tag_ref)
        config = changes.apply({"Env": None, "Cmd": None}, changes_)
        try:
            diff_id = await asyncio.to_thread(self.store.add_layer, body)
        except (LayerError, EOFError, ValueError) as e:
            raise InvalidParameter(f"invalid tar archive: {e}") from None
        except OSError as e:
            if e.errno is None:  # gzip.BadGzipFile and friends: the client's data
                raise InvalidParameter(f"invalid tar archive: {e}") from None
            raise
        cfg = default_config([diff_id], cmd=None, created_by="", comment=message or "Imported from -")
        cfg["comment"] = message or "Imported from -"  # dockerd's import sets the image's Comment too
        cfg["config"] = config
        if not cfg["config"].get("Env"):
            cfg["config"].pop("Env", None)
        try:
            img = await asyncio.to_thread(self.store.create, cfg, tag_ref)
        except LayerError as e:
            raise InvalidParameter(f"invalid tar archive: {e}") from None
        self.events.emit("image", "import", img.id, {"name": img.id})
        return img.id

    # ---- save / load ----------------------------------------------------------------------------

    def resolve_for_save(self, names: list[str]) -> list[tuple[Image, list[str]]]:
        return archive.resolve(self.store, names)

    def save(self, images: list[tuple[Image, list[str]]], out: IO[bytes], fmt: str) -> None:
        """Write the archive (runs in a worker thread)."""
        archive.save(self.store, images, out, fmt=fmt)

    def saved(self, images: list[tuple[Image, list[str]]]) -> None:
        for img, _ in images:
            self.events.emit("image", "save", img.id, {"name": img.id})

    def load(self, body: IO[bytes], emit: Callable[[dict], None], quiet: bool) -> list[str]:
        """Read an archive (runs in a worker thread); returns the loaded image ids."""
        return list(archive.load(self.store, body, emit, quiet=quiet).images)

    def loaded(self, ids: list[str]) -> None:
        for iid in ids:
            self.events.emit("image", "load", iid, {"name": iid})

    # ---- bootstrap ------------------------------------------------------------------------------

    def bootstrap_recipe(self, name: str) -> str:
        recipe = bootstrap.recipe_for(name)
        if recipe is None:
            raise NotFound(f"no bootstrap recipe for {name!r}; known: {bootstrap.known()}")
        return recipe

    def bootstrap(self, name: str, progress: Callable[[str], None]) -> Image:
        """Build a base image (runs in a worker thread)."""
        return bootstrap.bootstrap(self.store, name, progress)

    def bootstrapped(self, name: str, img: Image) -> None:
        for tag in bootstrap.RECIPES[self.bootstrap_recipe(name)].tags:
            self.events.emit("image", "tag", img.id, {"name": tag})

    # ---- commit ---------------------------------------------------------------------------------

    async def commit(self, container: str, *, repo: str, tag: str, author: str, comment: str,
                     changes_: list[str], pause: bool, config: dict[str, Any] | None) -> str:
        from hatoba.engine import commit as commit_mod

        ref = commit_mod.parse_repo_tag(repo, tag)
        return await commit_mod.commit(self.containers, self.store, container, ref=ref, author=author,
                                       comment=comment, changes=changes_, pause=pause, config=config)
