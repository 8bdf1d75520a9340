"""Output of the image/inspect/system CLI commands, checked byte for byte against the docker CLI traces.

The fixtures are JSON bodies copied from shared/reference/cli-traces (26-images, 34-history, 50/51-events,
01-version, 02-info, 87-system-df, 13-inspect, 31-rmi, 30-tag, 88-import); times are made deterministic
with ``now`` (the trace's Date header) and ``tz=0`` (the traces were recorded in UTC).
"""

from __future__ import annotations

import calendar
import time

import pytest

from hatoba.cli import gotemplate
from hatoba.cli.commands import images, inspect, system
from hatoba.cli.events import EventMessage
from hatoba.client.http import _q


def _utc(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))


# ---------------------------------------------------------------------------------------------------------
# images (26-images.txt)

IMAGES_JSON = [
    {"Containers": -1, "Created": 1795340400,
     "Id": "sha256:27b6c8d68a1f30377adae328aed1ddb590bae869a73e294b4886276f6df50046", "Labels": None,
     "ParentId": "", "RepoDigests": None, "RepoTags": ["busybox:full"], "SharedSize": -1, "Size": 1984274,
     "VirtualSize": 1984274},
    {"Containers": -1, "Created": 1795340160,
     "Id": "sha256:591520514bff5060a23bbd7bc84acf48462972a45adcc623bf03780bec2bebf2", "Labels": None,
     "ParentId": "", "RepoDigests": None, "RepoTags": ["busybox:latest"], "SharedSize": -1, "Size": 1982312,
     "VirtualSize": 1982312},
]
IMAGES_NOW = _utc("2026-11-22T09:42:41")


def test_images_table_matches_trace() -> None:
    assert images.format_images(IMAGES_JSON, now=IMAGES_NOW) == (
        "REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\n"
        "busybox      full      27b6c8d68a1f   2 minutes ago   1.98MB\n"
        "busybox      latest    591520514bff   6 minutes ago   1.98MB\n"
    )


def test_images_quiet_no_trunc_and_empty() -> None:
    assert images.format_images(IMAGES_JSON, quiet=True, now=IMAGES_NOW) == "27b6c8d68a1f\n591520514bff\n"
    out = images.format_images(IMAGES_JSON, quiet=True, trunc=False, now=IMAGES_NOW)
    assert out.splitlines()[0] == IMAGES_JSON[0]["Id"]
    assert images.format_images([], now=IMAGES_NOW) == "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"


def test_images_dangling_digests_and_registry_names() -> None:
    items = [
        {"Id": "sha256:" + "a" * 64, "Created": IMAGES_NOW - 30, "RepoTags": None, "RepoDigests": None,
         "Size": 0},
        {"Id": "sha256:" + "b" * 64, "Created": IMAGES_NOW - 7200, "Size": 2291483,
         "RepoTags": ["localhost:5055/pulltest:v1", "docker.io/library/alpine:3.10"],
         "RepoDigests": ["localhost:5055/pulltest@sha256:" + "c" * 64]},
    ]
    assert images.format_images(items, now=IMAGES_NOW) == (
        "REPOSITORY                TAG       IMAGE ID       CREATED          SIZE\n"
        "<none>                    <none>    aaaaaaaaaaaa   30 seconds ago   0B\n"
        "localhost:5055/pulltest   v1        bbbbbbbbbbbb   2 hours ago      2.29MB\n"
        "alpine                    3.10      bbbbbbbbbbbb   2 hours ago      2.29MB\n"
    )
    out = images.format_images(items, digests=True, now=IMAGES_NOW).splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE"]
    assert out[2].split()[:3] == ["localhost:5055/pulltest", "v1", "sha256:" + "c" * 64]
    assert out[3].split()[:3] == ["alpine", "3.10", "<none>"]


def test_images_custom_and_json_formats() -> None:
    fmt = "{{.Repository}}:{{.Tag}} {{.Size}}"
    assert images.format_images(IMAGES_JSON, fmt=fmt, now=IMAGES_NOW) == "busybox:full 1.98MB\nbusybox:latest 1.98MB\n"
    assert images.format_images(IMAGES_JSON, fmt="table {{.ID}}", now=IMAGES_NOW) == (
        "IMAGE ID\n27b6c8d68a1f\n591520514bff\n")
    line = images.format_images(IMAGES_JSON[:1], fmt="json", now=IMAGES_NOW, tz=0)
    assert line == (
        '{"Containers":"N/A","CreatedAt":"2026-11-22 09:40:00 +0000 UTC","CreatedSince":"2 minutes ago",'
        '"Digest":"\\u003cnone\\u003e","ID":"27b6c8d68a1f","Repository":"busybox","SharedSize":"N/A",'
        '"Size":"1.98MB","Tag":"full","UniqueSize":"N/A","VirtualSize":"1.984MB"}\n')


def test_images_template_error_is_a_status_error() -> None:
    with pytest.raises(images.StatusError) as e:
        images.format_images(IMAGES_JSON, fmt="{{.Repository", now=IMAGES_NOW)
    assert e.value.status == 1
    assert e.value.message.startswith("template parsing error: template: ")


def test_filters_param() -> None:
    f = images.parse_filters(["type=container", "container=evtest"], "events")
    assert images.encode_filters(f) == '{"container":{"evtest":true},"type":{"container":true}}'
    assert images.encode_filters({}) is None
    with pytest.raises(images.StatusError) as e:
        images.parse_filters(["dangling"], "images")
    assert e.value.status == 125
    assert e.value.message == ('invalid argument "dangling" for "-f, --filter" flag: bad format of filter '
                               "(expected name=value)\nSee 'hatoba images --help'.")


# ---------------------------------------------------------------------------------------------------------
# history (34-history.txt)

HISTORY_JSON = [
    {"Comment": "", "Created": 1795340571, "CreatedBy": '/bin/sh -c #(nop)  CMD ["sh" "app.sh"]',
     "Id": "sha256:9d4f2f09856a649b56778439fea544919d476c0a4c6fff05ac66ed8f461b28a0", "Size": 0,
     "Tags": ["friendlyhello:latest"]},
    {"Comment": "", "Created": 1795340571, "CreatedBy": "/bin/sh -c #(nop)  ENV NAME=World",
     "Id": "sha256:7c18d5e5f8c178bdc4dab64ea1de3caa551abe1d7fd340205f1fc29604538cfa", "Size": 0, "Tags": None},
    {"Comment": "", "Created": 1795340571, "CreatedBy": "/bin/sh -c #(nop)  EXPOSE 80",
     "Id": "sha256:90d795e329f28d6aa3c2e88862dfbbdd2618f0faa5c212b83937bdd36af489f2", "Size": 0, "Tags": None},
    {"Comment": "", "Created": 1795340571,
     "CreatedBy": '/bin/sh -c mkdir -p /app/www && echo "built at build time" > /app/www/built.txt && ls -la /app',
     "Id": "sha256:7fc42e0495593ed1341fbe868d100c813330643049dea0a7e4309026cef37283", "Size": 20, "Tags": None},
    {"Comment": "", "Created": 1795340570,
     "CreatedBy": "/bin/sh -c #(nop) COPY file:a36b1ec4a608492f78a4aefa42eeaa81d7c532c2b29a915e47f48a91ec245960"
                  " in /app/www/index.html ",
     "Id": "sha256:3d3f72933db86b340d2c1c7e22fe7cbab85947b0f63c9f8641a8e212c29ab649", "Size": 34, "Tags": None},
    {"Comment": "", "Created": 1795340570,
     "CreatedBy": "/bin/sh -c #(nop) ADD dir:bae8f9a61352846ee084d75947e783593b9a116a668c0d6f4c58140afd9c46e6"
                  " in /app ",
     "Id": "sha256:c92edcf3580967749a73649962b95fe4a5694b735eb8c63335cdfddd0db4ad7f", "Size": 678, "Tags": None},
    {"Comment": "", "Created": 1795340570, "CreatedBy": "/bin/sh -c #(nop) WORKDIR /app",
     "Id": "sha256:6c54e61b01a2369db7814bd42352a985d7bd0c4b6e64281c6ae177336d4b8913", "Size": 0, "Tags": None},
    {"Comment": "Imported from -", "Created": 1795340400, "CreatedBy": "",
     "Id": "sha256:27b6c8d68a1f30377adae328aed1ddb590bae869a73e294b4886276f6df50046", "Size": 1984274,
     "Tags": ["busybox:full"]},
]
HISTORY_NOW = _utc("2026-11-22T09:43:04")


def test_history_table_matches_trace() -> None:
    assert images.format_history(HISTORY_JSON, now=HISTORY_NOW) == (
        "IMAGE          CREATED          CREATED BY                                      SIZE      COMMENT\n"
        '9d4f2f09856a   13 seconds ago   /bin/sh -c #(nop)  CMD ["sh" "app.sh"]          0B        \n'
        "7c18d5e5f8c1   13 seconds ago   /bin/sh -c #(nop)  ENV NAME=World               0B        \n"
        "90d795e329f2   13 seconds ago   /bin/sh -c #(nop)  EXPOSE 80                    0B        \n"
        '7fc42e049559   13 seconds ago   /bin/sh -c mkdir -p /app/www && echo "built …   20B       \n'
        "3d3f72933db8   14 seconds ago   /bin/sh -c #(nop) COPY file:a36b1ec4a608492f…   34B       \n"
        "c92edcf35809   14 seconds ago   /bin/sh -c #(nop) ADD dir:bae8f9a61352846ee0…   678B      \n"
        "6c54e61b01a2   14 seconds ago   /bin/sh -c #(nop) WORKDIR /app                  0B        \n"
        "27b6c8d68a1f   3 minutes ago                                                    1.98MB    Imported from -\n"
    )


def test_history_non_human_no_trunc_quiet() -> None:
    out = images.format_history(HISTORY_JSON[-1:], human=False, trunc=False, now=HISTORY_NOW, tz=0)
    assert out == (
        "IMAGE                                                                     CREATED AT             "
        "CREATED BY   SIZE      COMMENT\n"
        "sha256:27b6c8d68a1f30377adae328aed1ddb590bae869a73e294b4886276f6df50046   2026-11-22T09:40:00Z   "
        "             1984274   Imported from -\n")
    assert images.format_history(HISTORY_JSON[:2], quiet=True, now=HISTORY_NOW) == "9d4f2f09856a\n7c18d5e5f8c1\n"
    old = [{"Id": "<missing>", "Created": 0, "CreatedBy": "x", "Size": 0, "Comment": ""}]
    assert images.format_history(old, fmt="{{.ID}} {{.CreatedSince}}", now=HISTORY_NOW) == "<missing> N/A\n"


def test_ellipsis_counts_display_width() -> None:
    assert images.ellipsis("abcdef", 4) == "abc…"
    assert images.ellipsis("abc", 4) == "abc"
    assert images.ellipsis("日本語テキスト", 6) == "日本…"
    assert images.ellipsis("日本", 4) == "日本"


def test_go_time_strings() -> None:
    assert images.go_time_string(1795340400, tz=0) == "2026-11-22 09:40:00 +0000 UTC"
    assert images.go_time_string(1795340400, tz=3600) == "2026-11-22 10:40:00 +0100 +0100"
    assert images.go_rfc3339(1795340400, tz=0) == "2026-11-22T09:40:00Z"
    assert images.go_rfc3339(1795340400, tz=-5 * 3600) == "2026-11-22T04:40:00-05:00"


# ---------------------------------------------------------------------------------------------------------
# rmi, tag, import, prune (31-rmi, 30-tag, 88-import)


def test_rmi_lines_match_trace() -> None:
    deleted = [{"Untagged": "tracerepo/webcommit:latest"}] + [
        {"Untagged": "tracerepo/webcommit:v1"},
        {"Deleted": "sha256:da758a6fc88aa58feca3544d9a8d42518acdce030b7f9bfefbcd29b19b700724"},
        {"Deleted": "sha256:aec6098bf18d68b271df712640a2eec2b974d81aa8f8a97ccd278925626713c6"},
    ]
    assert images.format_delete_items(deleted) == (
        "Untagged: tracerepo/webcommit:latest\n"
        "Untagged: tracerepo/webcommit:v1\n"
        "Deleted: sha256:da758a6fc88aa58feca3544d9a8d42518acdce030b7f9bfefbcd29b19b700724\n"
        "Deleted: sha256:aec6098bf18d68b271df712640a2eec2b974d81aa8f8a97ccd278925626713c6\n"
    )


def test_tag_query_matches_trace() -> None:
    assert _q(images.tag_params("tracerepo/webcommit:latest")) == (
        "?repo=docker.io%2Ftracerepo%2Fwebcommit&tag=latest")
    assert images.tag_params("busybox") == {"repo": "docker.io/library/busybox", "tag": "latest"}
    with pytest.raises(images.StatusError) as e:
        images.tag_params("Bad Name")
    assert e.value.message.startswith('Error parsing reference: "Bad Name" is not a valid repository/tag: ')


def test_import_query_matches_trace() -> None:
    params = images.import_params("-", "tracebb:imported", ['CMD ["sh"]'], "imported by trace", "")
    assert _q(params) == ("?changes=CMD+%5B%22sh%22%5D&fromSrc=-&message=imported+by+trace"
                          "&repo=tracebb%3Aimported")
    status = {"status": "sha256:58cba13114955b7bf8fd2b6bf42c07b614201b2ff88a2337650742f6f7453f34"}
    assert list(images.display_stream([status])) == [status["status"] + "\n"]
    with pytest.raises(images.StatusError):
        list(images.display_stream([{"error": "boom", "errorDetail": {"message": "boom"}}]))


def test_prune_report() -> None:
    assert images.format_prune_report({"ImagesDeleted": None, "SpaceReclaimed": 0}) == "Total reclaimed space: 0B\n"
    report = {"ImagesDeleted": [{"Untagged": "x:1"}, {"Deleted": "sha256:abc"}], "SpaceReclaimed": 2048}
    assert images.format_prune_report(report) == (
        "Deleted Images:\nuntagged: x:1\ndeleted: sha256:abc\n\nTotal reclaimed space: 2.048kB\n")


# ---------------------------------------------------------------------------------------------------------
# inspect (13-inspect, 82-error-inspect-missing)

INSPECT_JSON = {
    "Id": "8d87f4a69f4cfa0112f51a5295943eccc02c618b0faead29939e1d6ab4721acf",
    "Created": "2026-11-22T09:40:50.541672225Z",
    "Path": "httpd",
    "Args": ["-f", "-p", "80"],
    "State": {"Status": "running", "Running": True, "Paused": False, "Pid": 15268, "ExitCode": 0, "Error": "",
              "StartedAt": "2026-11-22T09:40:50.82629748Z", "FinishedAt": "0001-01-01T00:00:00Z"},
    "ExecIDs": None,
    "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {}}, "Dns": [], "ConsoleSize": [0, 0]},
    "NetworkSettings": {"IPAddress": "172.17.0.2"},
}


def test_inspect_indented_like_docker() -> None:
    assert inspect.format_inspect([INSPECT_JSON]) == """[
    {
        "Id": "8d87f4a69f4cfa0112f51a5295943eccc02c618b0faead29939e1d6ab4721acf",
        "Created": "2026-11-22T09:40:50.541672225Z",
        "Path": "httpd",
        "Args": [
            "-f",
            "-p",
            "80"
        ],
        "State": {
            "Status": "running",
            "Running": true,
            "Paused": false,
            "Pid": 15268,
            "ExitCode": 0,
            "Error": "",
            "StartedAt": "2026-11-22T09:40:50.82629748Z",
            "FinishedAt": "0001-01-01T00:00:00Z"
        },
        "ExecIDs": null,
        "HostConfig": {
            "LogConfig": {
                "Type": "json-file",
                "Config": {}
            },
            "Dns": [],
            "ConsoleSize": [
                0,
                0
            ]
        },
        "NetworkSettings": {
            "IPAddress": "172.17.0.2"
        }
    }
]
"""


def test_inspect_empty_json_template_and_escaping() -> None:
    assert inspect.format_inspect([]) == "[]\n"
    assert inspect.format_inspect([], "json") == "[]\n"
    assert inspect.format_inspect([], "{{.Id}}") == "\n"
    assert inspect.format_inspect([INSPECT_JSON], "{{ .NetworkSettings.IPAddress }}") == "172.17.0.2\n"
    assert inspect.format_inspect([{"a": 1}, {"a": 2}], "json") == '[{"a":1},{"a":2}]\n'
    assert inspect.indent_json({"k": "<none> & é"}) == '{\n    "k": "\\u003cnone\\u003e \\u0026 é"\n}'
    assert inspect.compact_json(["a\u2028b"]) == '["a\\u2028b"]'


def test_inspect_probes_then_reports_missing(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []

    class FakeClient:
        def json(self, method: str, path: str, params: object = None) -> object:
            calls.append(path)
            if path == "/info":
                return {"Swarm": {"ControlAvailable": False}}
            if path == "/containers/web1/json":
                return {"Id": "abc", "Name": "/web1"}
            raise inspect.APIError(404, "not found")

    get = inspect.make_getter(FakeClient(), "", False)  # type: ignore[arg-type]
    with pytest.raises(inspect.StatusError) as e:
        inspect.run_inspect(["nosuchthing", "web1"], "{{.Name}}", get)
    assert e.value.status == 1 and e.value.message == "Error: No such object: nosuchthing"
    assert capsys.readouterr().out == "/web1\n"
    assert calls == ["/containers/nosuchthing/json", "/images/nosuchthing/json", "/networks/nosuchthing",
                     "/volumes/nosuchthing", "/info", "/plugins/nosuchthing/json", "/containers/web1/json"]
    typed = inspect.make_getter(FakeClient(), "container", False)  # type: ignore[arg-type]
    with pytest.raises(inspect.StatusError) as e:
        inspect.run_inspect(["nope"], "", typed)
    assert e.value.message == "Error: No such container: nope"
    assert capsys.readouterr().out == "[]\n"


# ---------------------------------------------------------------------------------------------------------
# events (50-events, 51-events-since-filter)

EVENTS_JSON = [
    {"status": "kill", "id": "65408c3085c00b25d6fe9820f02af04bb8ef5f9e98d4e8f8e0aa31457a3c7eb9",
     "from": "alpine:3.10", "Type": "container", "Action": "kill",
     "Actor": {"ID": "65408c3085c00b25d6fe9820f02af04bb8ef5f9e98d4e8f8e0aa31457a3c7eb9",
               "Attributes": {"image": "alpine:3.10", "name": "pedantic_golick", "signal": "9"}},
     "scope": "local", "time": 1795340671, "timeNano": 1795340671247524500},
    {"Type": "network", "Action": "disconnect",
     "Actor": {"ID": "b4e32f7182f9d06b4ced8b5fd03cce1e7b418df9ffb14058470e77e0e980a9d3",
               "Attributes": {"container": "65408c3085c00b25d6fe9820f02af04bb8ef5f9e98d4e8f8e0aa31457a3c7eb9",
                              "name": "bridge", "type": "bridge"}},
     "scope": "local", "time": 1795340671, "timeNano": 1795340671341919933},
    {"status": "die", "id": "ab2a0adae01f3961d2175dc00db939d945a4a4c7b2d55919ccb339d85017e320", "from": "busybox",
     "Type": "container", "Action": "die",
     "Actor": {"ID": "ab2a0adae01f3961d2175dc00db939d945a4a4c7b2d55919ccb339d85017e320",
               "Attributes": {"exitCode": "0", "image": "busybox", "name": "evtest"}},
     "scope": "local", "time": 1795340672, "timeNano": 1795340672616978053},
]


def test_event_lines_match_trace() -> None:
    assert "".join(system.format_event(e, tz=0) for e in EVENTS_JSON) == (
        "2026-11-22T09:44:31.247524500Z container kill 65408c3085c00b25d6fe9820f02af04bb8ef5f9e98d4e8f8e0aa31457a3c7eb9"
        " (image=alpine:3.10, name=pedantic_golick, signal=9)\n"
        "2026-11-22T09:44:31.341919933Z network disconnect "
        "b4e32f7182f9d06b4ced8b5fd03cce1e7b418df9ffb14058470e77e0e980a9d3 "
        "(container=65408c3085c00b25d6fe9820f02af04bb8ef5f9e98d4e8f8e0aa31457a3c7eb9, name=bridge, type=bridge)\n"
        "2026-11-22T09:44:32.616978053Z container die ab2a0adae01f3961d2175dc00db939d945a4a4c7b2d55919ccb339d85017e320"
        " (exitCode=0, image=busybox, name=evtest)\n"
    )


def test_event_time_fallbacks() -> None:
    assert system.format_event({"Type": "image", "Action": "tag", "Actor": {"ID": "x"}, "time": 1795340671},
                               tz=0) == "2026-11-22T09:44:31.000000000Z image tag x\n"
    assert system.format_event({"Type": "image", "Action": "tag", "Actor": {"ID": "x"}}) == "image tag x\n"
    assert system.rfc3339_nano_fixed(1795340671247524500, tz=3600) == "2026-11-22T10:44:31.247524500+01:00"


def test_event_templates_see_go_field_names() -> None:
    tmpl = gotemplate.parse("{{.Time}} {{.Action}} {{.Actor.Attributes.name}}")
    assert tmpl.execute(EventMessage(EVENTS_JSON[2])) == "1795340672 die evtest"
    assert gotemplate.parse("{{.ID}} {{.Status}} {{.Scope}}").execute(EventMessage(EVENTS_JSON[1])) == "  local"
    raw = gotemplate.parse("{{json .}}").execute(EventMessage(EVENTS_JSON[1]))
    assert raw.startswith('{"Type":"network","Action":"disconnect","Actor":{"ID":"b4e32f')


def test_events_time_params_match_trace() -> None:
    now = 1795340679.4
    assert system.time_param("2m", now) == "1795340559"
    assert system.time_param("0s", now) == "1795340679"
    assert system.time_param("1795340000", now) == "1795340000"
    assert system.time_param("2026-11-22T09:40:00.5Z", now) == "1795340400.500000000"
    with pytest.raises(system.StatusError) as e:
        system.time_param("soon", now)
    assert e.value.message == 'failed to parse value as time or duration: "soon"'


# ---------------------------------------------------------------------------------------------------------
# version (01-version)

VERSION_JSON = {
    "Platform": {"Name": ""},
    "Components": [
        {"Name": "Engine", "Version": "20.10.24+dfsg1", "Details": {
            "ApiVersion": "1.41", "Arch": "amd64", "BuildTime": "2026-05-07T21:09:36.000000000+00:00",
            "Experimental": "false", "GitCommit": "5d6db84", "GoVersion": "go1.19.8",
            "KernelVersion": "6.18.44-fc-v657", "MinAPIVersion": "1.12", "Os": "linux"}},
        {"Name": "containerd", "Version": "1.6.20~ds1", "Details": {"GitCommit": "1.6.20~ds1-1+deb12u3"}},
        {"Name": "runc", "Version": "1.1.5+ds1", "Details": {"GitCommit": "1.1.5+ds1-1+deb12u1"}},
        {"Name": "docker-init", "Version": "0.19.0", "Details": {"GitCommit": ""}},
    ],
    "Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "MinAPIVersion": "1.12", "GitCommit": "5d6db84",
    "GoVersion": "go1.19.8", "Os": "linux", "Arch": "amd64", "KernelVersion": "6.18.44-fc-v657",
    "BuildTime": "2026-05-07T21:09:36.000000000+00:00",
}


def test_version_layout_matches_trace() -> None:
    cl = {"Version": "28.2.2", "ApiVersion": "1.41", "DefaultAPIVersion": "1.50", "GitCommit": "e6534b4",
          "GoVersion": "go1.24.3", "Os": "linux", "Arch": "amd64", "BuildTime": "Fri May 30 12:07:14 2025",
          "Context": "default"}
    out = system.format_version({"Client": cl, "Server": system.server_version(VERSION_JSON)})
    assert out == (
        "Client:\n"
        " Version:           28.2.2\n"
        " API version:       1.41 (downgraded from 1.50)\n"
        " Python version:    go1.24.3\n"
        " Git commit:        e6534b4\n"
        " Built:             Fri May 30 12:07:14 2025\n"
        " OS/Arch:           linux/amd64\n"
        " Context:           default\n"
        "\n"
        "Server:\n"
        " Engine:\n"
        "  Version:          20.10.24+dfsg1\n"
        "  API version:      1.41 (minimum version 1.12)\n"
        "  Python version:   go1.19.8\n"
        "  Git commit:       5d6db84\n"
        "  Built:            Thu May  7 21:09:36 2026\n"
        "  OS/Arch:          linux/amd64\n"
        "  Experimental:     false\n"
        " containerd:\n"
        "  Version:          1.6.20~ds1\n"
        "  GitCommit:        1.6.20~ds1-1+deb12u3\n"
        " runc:\n"
        "  Version:          1.1.5+ds1\n"
        "  GitCommit:        1.1.5+ds1-1+deb12u1\n"
        " docker-init:\n"
        "  Version:          0.19.0\n"
        "  GitCommit:        \n"
    )


def test_version_client_only_and_hatoba_values() -> None:
    cl = system.client_version()
    assert cl["ApiVersion"] == cl["DefaultAPIVersion"] == "1.41"
    assert cl["GoVersion"].startswith("python3.")
    out = system.format_version({"Client": cl, "Server": None})
    assert out.startswith("Client:\n Version:           ") and "downgraded" not in out
    assert out.endswith(" Context:           default\n")


def test_reformat_build_time_and_tabwriter() -> None:
    assert system.reformat_build_time("2026-05-07T21:09:36.000000000+00:00") == "Thu May  7 21:09:36 2026"
    assert system.reformat_build_time("2026-05-17T21:09:36+02:00") == "Sun May 17 21:09:36 2026"
    assert system.reformat_build_time("") == ""
    assert system.reformat_build_time("yesterday") == "yesterday"
    assert system.go_tabwrite("a\tb\nlonger\tc\nplain\nx\ty", 2, 1) == "a      b\nlonger c\nplain\nx y"


# ---------------------------------------------------------------------------------------------------------
# info (02-info)

INFO_JSON = {
    "ID": "I5LA:BE65:7B5C:AKAN:4Z3V:TZJM:CTTS:6YLE:554E:5S72:JBUG:LMHG", "Containers": 1, "ContainersRunning": 0,
    "ContainersPaused": 0, "ContainersStopped": 1, "Images": 2, "Driver": "overlay2",
    "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"], ["Native Overlay Diff", "true"],
                     ["userxattr", "false"]],
    "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "ipvlan", "macvlan", "null", "overlay"],
                "Authorization": None,
                "Log": ["awslogs", "fluentd", "gcplogs", "gelf", "journald", "json-file", "local", "logentries",
                        "splunk", "syslog"]},
    "Debug": False, "NFd": 29, "NGoroutines": 41, "SystemTime": "2026-11-22T09:40:38.884963369Z",
    "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs", "CgroupVersion": "1", "NEventsListener": 0,
    "KernelVersion": "6.18.44-fc-v657", "OperatingSystem": "Debian GNU/Linux 12 (bookworm)", "OSVersion": "12",
    "OSType": "linux", "Architecture": "x86_64", "IndexServerAddress": "https://index.docker.io/v1/",
    "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
                       "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                       "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": True,
                                                      "Official": True}},
                       "Mirrors": []},
    "NCPU": 2, "MemTotal": 25276510208, "GenericResources": None, "DockerRootDir": "/var/lib/docker",
    "HttpProxy": "", "HttpsProxy": "", "NoProxy": "", "Name": "vm", "Labels": [], "ExperimentalBuild": False,
    "ServerVersion": "20.10.24+dfsg1",
    "Runtimes": {"io.containerd.runtime.v1.linux": {"path": "runc"}, "runc": {"path": "runc"},
                 "io.containerd.runc.v2": {"path": "runc"}},
    "DefaultRuntime": "runc",
    "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False, "Error": "",
              "RemoteManagers": None},
    "LiveRestoreEnabled": False, "Isolation": "", "InitBinary": "docker-init",
    "ContainerdCommit": {"ID": "1.6.20~ds1-1+deb12u3", "Expected": "1.6.20~ds1-1+deb12u3"},
    "RuncCommit": {"ID": "1.1.5+ds1-1+deb12u1", "Expected": "1.1.5+ds1-1+deb12u1"},
    "InitCommit": {"ID": "", "Expected": ""}, "SecurityOptions": ["name=seccomp,profile=default"], "Warnings": None,
}


def test_info_layout_matches_trace() -> None:
    out = system.format_info(INFO_JSON, {"Version": "28.2.2", "Context": "default", "Debug": False})
    assert out == (
        "Client:\n"
        " Version:    28.2.2\n"
        " Context:    default\n"
        " Debug Mode: false\n"
        "\n"
        "Server:\n"
        " Containers: 1\n"
        "  Running: 0\n"
        "  Paused: 0\n"
        "  Stopped: 1\n"
        " Images: 2\n"
        " Server Version: 20.10.24+dfsg1\n"
        " Storage Driver: overlay2\n"
        "  Backing Filesystem: extfs\n"
        "  Supports d_type: true\n"
        "  Native Overlay Diff: true\n"
        "  userxattr: false\n"
        " Logging Driver: json-file\n"
        " Cgroup Driver: cgroupfs\n"
        " Cgroup Version: 1\n"
        " Plugins:\n"
        "  Volume: local\n"
        "  Network: bridge host ipvlan macvlan null overlay\n"
        "  Log: awslogs fluentd gcplogs gelf journald json-file local logentries splunk syslog\n"
        " Swarm: inactive\n"
        " Runtimes: io.containerd.runtime.v1.linux runc io.containerd.runc.v2\n"
        " Default Runtime: runc\n"
        " Init Binary: docker-init\n"
        " containerd version: 1.6.20~ds1-1+deb12u3\n"
        " runc version: 1.1.5+ds1-1+deb12u1\n"
        " init version: \n"
        " Security Options:\n"
        "  seccomp\n"
        "   Profile: default\n"
        " Kernel Version: 6.18.44-fc-v657\n"
        " Operating System: Debian GNU/Linux 12 (bookworm)\n"
        " OSType: linux\n"
        " Architecture: x86_64\n"
        " CPUs: 2\n"
        " Total Memory: 23.54GiB\n"
        " Name: vm\n"
        " ID: I5LA:BE65:7B5C:AKAN:4Z3V:TZJM:CTTS:6YLE:554E:5S72:JBUG:LMHG\n"
        " Hatoba Root Dir: /var/lib/docker\n"
        " Debug Mode: false\n"
        " Experimental: false\n"
        " Insecure Registries:\n"
        "  127.0.0.0/8\n"
        " Live Restore Enabled: false\n"
        "\n"
    )


def test_info_without_server() -> None:
    out = system.format_info(None, system.client_info())
    assert out.endswith(" Debug Mode: false\n\nServer:\n")


# ---------------------------------------------------------------------------------------------------------
# system df (87-system-df)

# (Containers, Size, SharedSize) of the 19 images in the trace's /system/df answer
_DF_IMAGES = [(0, 2291483, 1984274), (0, 1984579, 1984347), (1, 1984471, 1984347), (1, 1984347, 1984347),
              (1, 1984347, 1984347), (1, 0, 0), (0, 1984347, 1984347), (0, 1984358, 1984347), (0, 0, 0),
              (0, 1984395, 1984347), (0, 1984395, 1984347), (0, 1984371, 1984347), (1, 1984347, 1984347),
              (0, 1984347, 1984347), (7, 1984347, 1984347), (4, 1984347, 1984347), (1, 1985006, 1984274),
              (8, 1984274, 1984274), (1, 1982312, 0)]


def _df_doc() -> dict:
    imgs = [{"Id": f"sha256:{n:064x}", "Containers": c, "Size": s, "SharedSize": sh, "Created": 1795340400,
             "RepoTags": [f"img{n}:latest"], "RepoDigests": []} for n, (c, s, sh) in enumerate(_DF_IMAGES)]
    ctrs = [{"Id": f"{n:064x}", "Names": [f"/c{n}"], "Image": "busybox", "ImageID": "sha256:" + "1" * 64,
             "Command": "sh", "Created": 1795340400, "State": "running" if n < 5 else "exited",
             "Status": "Up 1 second" if n < 5 else "Exited (0) 1 second ago",
             "SizeRw": 46 if n == 0 else 232 if n == 7 else 0, "Mounts": []} for n in range(37)]
    return {"LayersSize": 6259361, "Images": imgs, "Containers": ctrs,
            "Volumes": [{"Name": "v1", "Driver": "local", "UsageData": {"RefCount": 1, "Size": 0}}],
            "BuildCache": []}


def test_df_summary_matches_trace() -> None:
    assert system.format_df(_df_doc()) == (
        "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n"
        "Images          19        10        6.259MB   4.276MB (68%)\n"
        "Containers      37        5         278B      232B (83%)\n"
        "Local Volumes   1         1         0B        0B\n"
        "Build Cache     0         0         0B        0B\n"
    )


def test_df_formats() -> None:
    doc = _df_doc()
    assert system.format_df(doc, fmt="{{.Type}}={{.TotalCount}}") == (
        "Images=19\nContainers=37\nLocal Volumes=1\nBuild Cache=0\n")
    assert system.format_df({}, fmt="json").splitlines()[0] == (
        '{"Active":"0","Reclaimable":"0B","Size":"0B","TotalCount":"0","Type":"Images"}')


def test_df_verbose_tables() -> None:
    doc = _df_doc()
    doc["Images"] = doc["Images"][-1:]
    doc["Containers"] = doc["Containers"][:1]
    out = system.format_df(doc, verbose=True, now=1795340400 + 90)
    assert out == (
        "Images space usage:\n\n"
        "REPOSITORY   TAG       IMAGE ID       CREATED              SIZE      SHARED SIZE   UNIQUE SIZE   CONTAINERS\n"
        "img18        latest    000000000000   About a minute ago   1.98MB    0B            1.982MB       1\n"
        "\nContainers space usage:\n\n"
        "CONTAINER ID   IMAGE     COMMAND   LOCAL VOLUMES   SIZE      CREATED              STATUS        NAMES\n"
        '000000000000   busybox   "sh"      0               46B       About a minute ago   Up 1 second   c0\n'
        "\nLocal Volumes space usage:\n\n"
        "VOLUME NAME   LINKS     SIZE\n"
        "v1            1         0B\n"
        "\nBuild cache usage: 0B\n\n"
        "CACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n"
    )
