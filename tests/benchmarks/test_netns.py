"""The private network namespace of a benchmark run: the commands that build it, the refusal to
touch the host's own interfaces, and the probe that says why it cannot be made."""

from __future__ import annotations

import subprocess

import pytest

from benchmarks import _netns


def test_the_namespace_holds_lo_and_a_loopback_address_on_a_veth_pair_of_its_own() -> None:
    assert _netns.in_namespace(["janus"]) == ["unshare", "--net", "--", "janus"]
    assert _netns.setup_commands("127.0.0.2") == [
        ["/usr/sbin/ip", "link", "set", "lo", "up"],
        ["/usr/sbin/ip", "link", "add", "bench0", "type", "veth", "peer", "name", "bench1"],
        ["/usr/sbin/ip", "address", "add", "127.0.0.2/32", "dev", "bench0"],
        ["/usr/sbin/ip", "link", "set", "bench0", "up"],
        ["/usr/sbin/ip", "link", "set", "bench1", "up"],
    ]


def test_in_the_hosts_namespace_nothing_is_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*_: object, **__: object) -> None:
        raise AssertionError("no interface command runs in the host's namespace")

    monkeypatch.setattr(subprocess, "run", never)
    with pytest.raises(RuntimeError, match="host's network namespace"):
        _netns.set_up(_netns.current())


def test_without_unshare_the_probe_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_netns.shutil, "which", lambda tool: None)
    assert _netns.namespace_missing() == "unshare not found (Debian: util-linux, iproute2)"


def test_a_refused_namespace_is_reported_with_the_tools_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(command: list[str], **_: object) -> None:
        assert command[:3] == ["unshare", "--net", "--"]  # only ever in a throwaway namespace
        raise subprocess.CalledProcessError(1, command, stderr=b"unshare: Operation not permitted")

    monkeypatch.setattr(_netns.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(subprocess, "run", refused)
    reason = _netns.namespace_missing()
    assert reason is not None
    assert "(unshare: Operation not permitted)" in reason and reason.endswith("needs root")
