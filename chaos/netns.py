"""A worker host cut off by a network partition: a network namespace joined by a veth pair.

The partitioned worker runs in its own namespace and reaches PostgreSQL and Redis at the host
end of the pair. Setting that end down drops its packets without a reset (as a cable pulled
or a switch failing would); setting it up again lets the same TCP connections carry on.
Needs root and `ip netns`; `unavailable()` says why not otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def unavailable() -> str | None:
    """Why a partition cannot be made on this machine, or None if it can."""
    if os.geteuid() != 0:
        return "needs root (ip netns, veth)"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    probe = f"swprobe{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"`ip netns add` refused: {exc.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return None


@dataclass
class Partition:
    """One namespace and its veth pair; `host_ip` is where the servers listen for it."""

    name: str
    host_if: str
    ns_if: str
    host_ip: str
    ns_ip: str

    @classmethod
    def create(cls) -> Partition:
        """Make the namespace and the link (addresses from a /30 no interface here uses)."""
        tag = uuid.uuid4().hex[:6]
        third = int(tag[:2], 16)
        part = cls(f"swchaos{tag}", f"swc{tag}h", f"swc{tag}n", f"10.213.{third}.1",
                   f"10.213.{third}.2")  # fmt: skip
        _ip("netns", "add", part.name)
        try:
            _ip("link", "add", part.host_if, "type", "veth", "peer", "name", part.ns_if)
            _ip("link", "set", part.ns_if, "netns", part.name)
            _ip("addr", "add", f"{part.host_ip}/30", "dev", part.host_if)
            _ip("link", "set", part.host_if, "up")
            inside = ("netns", "exec", part.name, "ip")
            _ip(*inside, "addr", "add", f"{part.ns_ip}/30", "dev", part.ns_if)
            _ip(*inside, "link", "set", part.ns_if, "up")
            _ip(*inside, "link", "set", "lo", "up")
        except subprocess.CalledProcessError:
            part.destroy()
            raise
        return part

    @property
    def network(self) -> str:
        """The pair's /30, for pg_hba."""
        return f"{self.ns_ip}/30"

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` run inside the namespace (`ip netns exec` execs it: same pid)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def cut(self) -> None:
        """Pull the cable: packets between the worker and the servers are dropped."""
        _ip("link", "set", self.host_if, "down")

    def restore(self) -> None:
        """Plug it back in."""
        _ip("link", "set", self.host_if, "up")

    def destroy(self) -> None:
        """Remove the link and the namespace (whatever of them exists)."""
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)
