"""Registry operations of the engine: pull (with the bootstrap fallback for base-image names),
push, login and search, over the daemon-wide `distribution.service.Service` created on first use.

Progress goes to a `distribution.progress.Output`; the API streams it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hatoba.distribution import progress as pg
from hatoba.distribution.auth import AuthConfig
from hatoba.errors import HatobaError, InvalidParameter
from hatoba.images import bootstrap, reference

if TYPE_CHECKING:
    from hatoba.distribution.service import Service
    from hatoba.engine.config import DaemonConfig
    from hatoba.engine.events import Events
    from hatoba.images.store import ImageStore


def _bootstrap_hint(ref: reference.Reference) -> str:
    """"; hatoba can build x from Debian packages: run …" for names a bootstrap recipe builds, else ""."""
    h = bootstrap.hint(ref.familiar()) if ref.tag or ref.digest else bootstrap.hint(ref.repository)
    return f"; {h}" if h else ""


class RegistryService:
    """The distribution routes' backend."""

    def __init__(self, store: ImageStore, events: Events, config: DaemonConfig):
        self.store = store
        self.events = events
        self.config = config
        self._svc: Service | None = None

    @property
    def service(self) -> Service:
        if self._svc is None:
            from hatoba.distribution.service import Service

            self._svc = Service(self.store, self.config)
        return self._svc

    def pull_ref(self, image: str, tag: str) -> tuple[reference.Reference, bool]:
        """The reference a pull asks for, and whether it means every tag of the repository."""
        if not image:
            raise InvalidParameter("fromImage is required")
        ref = reference.parse(image, default_tag=None)
        if tag:
            ref = reference.parse(f"{ref.repository}@{tag}" if tag.startswith("sha256:") else f"{ref.repository}:{tag}")
        return ref, ref.tag is None and ref.digest is None

    async def pull(self, ref: reference.Reference, all_tags: bool, auth: AuthConfig, out: pg.Output,
                   platform: str | None) -> None:
        from hatoba.distribution import pull as puller

        loop = asyncio.get_running_loop()
        try:
            results = await puller.pull(self.service, ref, auth, out, platform=platform, all_tags=all_tags)
        except HatobaError as e:
            recipe = bootstrap.recipe_for(ref.familiar()) if not all_tags else None
            if recipe and not out.sent and self.config.bootstrap_missing_images:
                # daemon.json "bootstrap-missing-images": build it from Debian packages instead
                await asyncio.to_thread(bootstrap.bootstrap, self.store, ref.familiar(),
                                        lambda s: loop.call_soon_threadsafe(out.send, pg.status(s)))
                return
            hint = _bootstrap_hint(ref) if not out.sent else ""
            if hint:
                raise type(e)(e.message + hint) from None
            raise
        for r in results:
            tags = self.store.tags_of(r.image_id)
            name = ref.familiar() if not all_tags else (tags[0] if tags else ref.repository)
            self.events.emit("image", "pull", name, {"name": ref.repository})

    def push_ref(self, name: str, tag: str) -> tuple[reference.Reference, str]:
        ref = reference.parse(name, default_tag=None)
        if ref.digest:
            raise InvalidParameter("cannot push a digest reference")
        return ref, tag or ref.tag or ""

    async def push(self, ref: reference.Reference, tag: str, auth: AuthConfig, out: pg.Output) -> None:
        from hatoba.distribution import push as pusher

        results = await pusher.push(self.service, ref, tag or None, auth, out, all_tags=not tag)
        for aux in results:
            self.events.emit("image", "push", f"{ref.repository}:{aux['Tag']}", {"name": ref.repository})

    async def login(self, auth: AuthConfig) -> dict[str, str]:
        from hatoba.distribution.search import login

        return await login(self.service, auth)

    async def search(self, term: str, limit: int | None, filters: dict[str, list[str]],
                     auth: AuthConfig) -> list[dict[str, Any]]:
        from hatoba.distribution.search import search

        if not term:
            raise InvalidParameter("term is required")
        return await search(self.service, term, limit, filters, auth)
