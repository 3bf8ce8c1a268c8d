"""A device fleet's readings, as a simulator and the benchmarks send them: fresh readings with
resends (some with a changed value), late and future ones mixed in at given fractions, and a
tally of what was sent that the store can be checked against.

Every key is accounted for by construction. A fresh reading's time moves forward by at least a
millisecond per `(device, metric)` and is a whole millisecond; a late one has a microsecond
part that is not, and is drawn again if its key was used; a key is resent at most once, so the
pair of offers is a duplicate or a conflict whichever the store sees first. Future readings lie
beyond any skew the profile allows and are refused, never stored.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

PROFILE_ID = "sim-fleet"
# name: (unit, low, high, centre, swing); values stay well inside the declared range, so a
# conflicting resend (the value moved by 0.5) is never out of range.
METRICS: dict[str, tuple[str, float, float, float, float]] = {
    "temp": ("Cel", -40, 125, 22, 10),
    "humidity": ("%RH", 0, 100, 45, 15),
    "pressure": ("hPa", 800, 1200, 1013, 8),
    "co2": ("ppm", 0, 10_000, 600, 200),
    "voltage": ("V", 0, 500, 230, 5),
    "current": ("A", 0, 100, 4, 2),
    "power": ("W", 0, 50_000, 900, 400),
    "rssi": ("dBm", -150, 0, -70, 10),
    "battery": ("%EL", 0, 100, 60, 30),
    "vibration": ("m/s2", 0, 1_000, 2, 1.5),
}
INTERVAL = 10.0  # seconds: the expected reporting interval the profile declares
PERIOD = 120.0  # seconds: one swing of each value (temp crosses 30 °C within a minute or two)
LATE_HOURS = (1.0, 72.0)
FUTURE_MINUTES = (20.0, 120.0)  # beyond the default 5-minute skew even after a long back-off
RESEND_POOL = 2_000  # keys per device kept for resending


def profile_body(profile_id: str = PROFILE_ID) -> dict[str, Any]:
    """`POST /v1/device-profiles` for the fleet: ten numeric metrics, future readings refused."""
    metrics = {
        name: {"type": "number", "unit": unit, "min": low, "max": high, "interval": INTERVAL}
        for name, (unit, low, high, _, _) in METRICS.items()
    }
    return {"id": profile_id, "metrics": metrics, "future_policy": "refuse"}


@dataclass(frozen=True)
class Mix:
    """Fractions of a batch's readings: resent, late, future; `conflicts` of the resent ones
    carry a changed value."""

    duplicates: float = 0.1
    late: float = 0.05
    future: float = 0.005
    conflicts: float = 0.03

    def __post_init__(self) -> None:
        for name in ("duplicates", "late", "future", "conflicts"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a fraction between 0 and 1")
        if self.duplicates + self.late + self.future >= 1:
            raise ValueError("duplicates + late + future must leave room for fresh readings")


@dataclass
class Counts:
    """What a batch (or a run, summed) offered: `unique` keys first sent, of which `late`;
    resends that are `duplicates` or `conflicts`; `future` readings the store refuses."""

    batches: int = 0
    readings: int = 0
    unique: int = 0
    late: int = 0
    duplicates: int = 0
    conflicts: int = 0
    future: int = 0

    def add(self, other: Counts) -> None:
        """Add another tally to this one."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class FleetBatch:
    """One device's batch: its readings (`application/json` members) and what they are."""

    device: str
    readings: list[dict[str, Any]]
    counts: Counts
    # The new keys' rows, for a baseline to COPY: (metric, ts, value, unit).
    new: list[tuple[str, datetime, float, str]] = field(default_factory=list)

    def body(self) -> bytes:
        """The batch as `application/json`."""
        return json.dumps({"readings": self.readings}, separators=(",", ":")).encode()


@dataclass
class _Device:
    streams: dict[str, int]  # metric -> last fresh time (µs since the epoch)
    phase: float
    pool: list[tuple[str, int, float]] = field(default_factory=list)  # (metric, µs, value)


def _iso(us: int) -> str:
    return _instant(us).isoformat().replace("+00:00", "Z")


def _instant(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


class Fleet:
    """The readings of `devices` devices named `<prefix>-0001`…, drawn from a seeded generator."""

    def __init__(self, devices: int, *, mix: Mix, prefix: str = "sim", seed: int = 1) -> None:
        self.mix = mix
        self.rng = random.Random(seed)
        width = max(4, len(str(devices)))
        self.ids = [f"{prefix}-{n:0{width}d}" for n in range(1, devices + 1)]
        self._devices = {
            d: _Device(streams=dict.fromkeys(METRICS, 0), phase=self.rng.uniform(0, math.tau))
            for d in self.ids
        }
        self._late_keys: set[tuple[str, str, int]] = set()
        self._carry = dict.fromkeys(("duplicates", "late", "future", "conflicts"), 0.0)

    def _share(self, name: str, size: int) -> int:
        """Readings of this kind among `size`: exact over a run, not just on average."""
        self._carry[name] += getattr(self.mix, name) * size
        taken = int(self._carry[name])
        self._carry[name] -= taken
        return taken

    def _value(self, device: _Device, metric: str, us: int) -> float:
        _, _, _, centre, swing = METRICS[metric]
        wave = math.sin(device.phase + math.tau * us / 1e6 / PERIOD)
        return round(centre + swing * wave + self.rng.gauss(0, swing / 20), 2)

    def batch(self, device_id: str, *, size: int, now: datetime) -> FleetBatch:
        """The next batch of `size` readings of `device_id`, as of `now`."""
        device = self._devices[device_id]
        now_us = (now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1) * 1000
        counts = Counts(batches=1, readings=size)
        out = FleetBatch(device_id, [], counts)
        resent, late, future = (self._share(k, size) for k in ("duplicates", "late", "future"))
        metrics = list(METRICS)
        for n in range(size - resent - late - future):
            metric = metrics[n % len(metrics)]
            us = max(now_us, device.streams[metric] + 1000)
            device.streams[metric] = us
            self._offer_new(out, device, metric, us)
        for n in range(late):
            metric = metrics[n % len(metrics)]
            self._offer_new(out, device, metric, self._late_us(device_id, metric, now_us))
        for n in range(future):
            ahead = self.rng.uniform(*FUTURE_MINUTES) * 60e6
            us = now_us + int(ahead) // 1000 * 1000
            out.readings.append(self._reading(metrics[n % len(metrics)], us, 1.0))
            counts.future += 1
        conflicting = self._share("conflicts", resent)
        for n in range(resent):
            self._offer_resend(out, device, changed=n < conflicting)
        self.rng.shuffle(out.readings)
        return out

    def _late_us(self, device_id: str, metric: str, now_us: int) -> int:
        while True:
            us = now_us - int(self.rng.uniform(*LATE_HOURS) * 3600e6)
            # Whole milliseconds are fresh readings' times; a late key is never drawn twice.
            if us % 1000 != 0 and (device_id, metric, us) not in self._late_keys:
                self._late_keys.add((device_id, metric, us))
                return us

    def _offer_new(self, out: FleetBatch, device: _Device, metric: str, us: int) -> None:
        value = self._value(device, metric, us)
        out.readings.append(self._reading(metric, us, value))
        out.new.append((metric, _instant(us), value, METRICS[metric][0]))
        out.counts.unique += 1
        out.counts.late += us % 1000 != 0
        if len(device.pool) >= RESEND_POOL:
            device.pool[self.rng.randrange(RESEND_POOL)] = (metric, us, value)
        else:
            device.pool.append((metric, us, value))

    def _offer_resend(self, out: FleetBatch, device: _Device, *, changed: bool) -> None:
        if not device.pool:  # nothing sent yet: send something new instead
            metric = next(iter(METRICS))
            us = device.streams[metric] = device.streams[metric] + 1000
            self._offer_new(out, device, metric, us)
            return
        at = self.rng.randrange(len(device.pool))
        metric, us, value = device.pool[at]
        device.pool[at] = device.pool[-1]
        device.pool.pop()  # each key is resent once at most
        if changed:
            value = round(value + 0.5, 2)
            out.counts.conflicts += 1
        else:
            out.counts.duplicates += 1
        out.readings.append(self._reading(metric, us, value))

    @staticmethod
    def _reading(metric: str, us: int, value: float) -> dict[str, Any]:
        return {"metric": metric, "ts": _iso(us), "value": value, "unit": METRICS[metric][0]}
