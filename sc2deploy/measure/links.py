"""Link models: delay and radio energy of sending a payload (torch-free).

A link is either *framed at a nominal rate* (bytes split into frames of at most
``frame_payload_bytes``, each with ``frame_overhead_bytes`` and ``per_frame_ms``)
or a *LoRa* link whose frame airtime follows the SX1276 datasheet formula
(Semtech SX1276/77/78/79 datasheet rev. 7, section 4.1.1.7)::

    T_sym = 2^SF / BW,  T_preamble = (n_preamble + 4.25) T_sym
    n_payload = 8 + max(ceil((8 PL - 4 SF + 28 + 16 CRC - 20 IH) / (4 (SF - 2 DE))) (CR + 4), 0)

Radio energy = TX power x airtime. Every profile carries its source.

Two limits of real links are modeled as expected values:

* **frame loss** ``p`` with retransmission until each frame gets through: a frame is sent
  ``1 / (1 - p)`` times on average, and each resend first waits ``retry_wait_ms`` (e.g. the
  LoRaWAN receive windows); airtime and radio energy grow by ``1 / (1 - p)``.
* **duty cycle** ``d`` (ETSI EN 300 220, e.g. 1 % in most EU868 sub-bands): after every
  transmission of airtime ``T`` the radio stays silent ``T (1/d - 1)``, except after the last::

      delay = A + (A - T_last) (1/d - 1) + resends x retry_wait,   A = expected airtime
"""

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import numpy as np

from sc2deploy.errors import UsageError
from sc2deploy.config_files import read_mapping

LORA_MAX_PAYLOAD = 255
LINK_FILE_SUFFIXES = (".json", ".yaml", ".yml")
SX1276 = "Semtech SX1276 datasheet rev. 7 (RFO/PA_BOOST supply current at 3.3 V)"


@dataclass(frozen=True)
class LoRa:
    """LoRa modulation parameters (airtime per frame from the SX1276 formula)."""

    sf: int
    bw_hz: float
    cr: int = 1  # 1..4 for coding rate 4/5..4/8
    preamble: int = 8
    implicit_header: bool = False
    crc: bool = True
    low_data_rate: bool = False

    def __post_init__(self):
        if not 6 <= self.sf <= 12 or not 1 <= self.cr <= 4 or self.bw_hz <= 0:
            raise UsageError(f"invalid LoRa parameters {self}: expected SF 6-12, CR 1-4, BW > 0")
        if self.sf == 6 and not self.implicit_header:
            raise UsageError("LoRa SF6 works only in implicit-header mode (SX1276 datasheet)")

    @property
    def bit_rate(self) -> float:
        return self.sf * self.bw_hz / 2 ** self.sf * 4 / (4 + self.cr)

    def frame_ms(self, payload: int) -> float:
        t_sym = 2 ** self.sf / self.bw_hz
        num = 8 * payload - 4 * self.sf + 28 + 16 * self.crc - 20 * self.implicit_header
        den = 4 * (self.sf - 2 * self.low_data_rate)
        n_payload = 8 + max(math.ceil(num / den) * (self.cr + 4), 0)
        return (self.preamble + 4.25 + n_payload) * t_sym * 1e3


@dataclass(frozen=True)
class Link:
    """A radio link: how long a payload takes and what it costs the transmitter."""

    name: str
    rate_bps: float
    source: str
    tx_watts: Optional[float] = None
    frame_payload_bytes: Optional[int] = None  # None: one frame of any size
    frame_overhead_bytes: int = 0
    per_frame_ms: float = 0.0
    lora: Optional[LoRa] = None
    duty_cycle: Optional[float] = None  # fraction of time on air allowed (0.01 = 1 %)
    frame_loss: float = 0.0  # probability that a frame is lost (and sent again)
    retry_wait_ms: float = 0.0  # wait before each resend (acknowledgement timeout)

    def frames(self, nbytes: int) -> int:
        if self.frame_payload_bytes is None:
            return 1
        return max(1, math.ceil(nbytes / self.frame_payload_bytes))

    def delay_ms(self, nbytes: int) -> float:
        """Expected time from the first bit sent to the last received: airtime with resends,
        their waits, and the duty cycle's silences."""
        airtime, last = self._airtime_ms(nbytes)
        resends = self.frames(nbytes) * self.frame_loss / (1 - self.frame_loss)
        expected = airtime / (1 - self.frame_loss)
        silence = 0.0 if self.duty_cycle is None else \
            (expected - last) * (1 / self.duty_cycle - 1)
        return expected + silence + resends * self.retry_wait_ms

    def airtime_ms(self, nbytes: int) -> float:
        """Expected time on air (what radio energy is paid for), resends included."""
        return self._airtime_ms(nbytes)[0] / (1 - self.frame_loss)

    def _airtime_ms(self, nbytes: int):
        """(time on air for ``nbytes``, frames and their overhead included; the last frame's)."""
        nbytes = int(nbytes)
        if nbytes < 0:
            raise UsageError(f"payload size must be >= 0 bytes, got {nbytes}")
        frames = self.frames(nbytes)
        if self.lora is not None:
            full, rest = divmod(nbytes, self.frame_payload_bytes)
            ms = full * self.lora.frame_ms(self.frame_payload_bytes)
            last = self.lora.frame_ms(rest) if rest or not full else 0.0
            return ms + last, last or self.lora.frame_ms(self.frame_payload_bytes)
        bits = 8 * (nbytes + frames * self.frame_overhead_bytes)
        ms = bits / self.rate_bps * 1e3 + frames * self.per_frame_ms
        return ms, ms / frames  # frames of a framed link: taken as equal

    def radio_joules(self, nbytes: int) -> Optional[float]:
        return None if self.tx_watts is None else self.tx_watts * self.airtime_ms(nbytes) / 1e3

    def summary(self, payloads: Sequence[float]) -> dict:
        """The results-file entry for these payload sizes (bytes per image)."""
        delays = np.array([self.delay_ms(int(round(b))) for b in payloads], dtype=np.float64)
        radio = [self.radio_joules(int(round(b))) for b in payloads]
        entry = {k: v for k, v in asdict(self).items() if k != "lora"}
        entry["lora"] = asdict(self.lora) if self.lora else None
        entry["delay_ms"] = {"mean": float(delays.mean()), "p50": float(np.percentile(delays, 50)),
                             "p99": float(np.percentile(delays, 99))}
        entry["radio_joules_per_image"] = None if radio[0] is None else float(np.mean(radio))
        return entry


def _lora(name: str, tx_watts: float, sf: int, bw_hz: float, note: str) -> Link:
    lora = LoRa(sf=sf, bw_hz=bw_hz, implicit_header=sf == 6)
    return Link(name, lora.bit_rate, f"{SX1276}; {note}", tx_watts, LORA_MAX_PAYLOAD, 0, 0.0,
                lora)


BUILTIN: Dict[str, Link] = {link.name: link for link in (
    _lora("lora-sx1276-20dbm", 0.396, 6, 500e3,
          "SF6, 500 kHz, CR 4/5 (37.5 kbit/s, the WACV'22 setting), +20 dBm: 120 mA x 3.3 V"),
    _lora("lora-sx1276-13dbm", 0.0957, 6, 500e3,
          "SF6, 500 kHz, CR 4/5 (37.5 kbit/s), +13 dBm: 29 mA x 3.3 V"),
    _lora("lora-sf7-125k", 0.396, 7, 125e3, "SF7, 125 kHz, CR 4/5 (5.47 kbit/s), +20 dBm"),
    Link("lora-eu868-sf7", LoRa(sf=7, bw_hz=125e3).bit_rate,
         f"{SX1276}; SF7, 125 kHz, CR 4/5, +14 dBm (EU868's limit): 44 mA x 3.3 V; ETSI EN "
         "300 220 1 % duty cycle of the g1 sub-band (868.0-868.6 MHz)", 0.1452, LORA_MAX_PAYLOAD,
         0, 0.0, LoRa(sf=7, bw_hz=125e3), duty_cycle=0.01),
    Link("lora-ideal-37.5k", 37500.0,
         "WACV'22 supplementary assumption: bytes x 8 / 37.5 kbit/s, no framing; "
         "TX power of the SX1276 at +20 dBm (120 mA x 3.3 V)", 0.396),
    Link("ble-1m", 1e6, "nRF52840 product specification: 4.8 mA x 3 V TX at 0 dBm; LE 1M PHY, "
         "251-byte LL payloads, 14 B of LL/L2CAP overhead, 2 x 150 us inter-frame spacing",
         0.0144, 251, 14, 0.3),
    Link("wifi-80211n", 65e6, "ESP32 datasheet: 180 mA x 3.3 V TX at MCS7; 802.11n MCS7 20 MHz "
         "PHY rate, no contention (a lower bound on delay)", 0.594, 1500, 0, 0.0),
    Link("nb-iot", 54e3, "NB-IoT uplink ~54 kbit/s (module README); no TX power source: radio "
         "energy not modeled", None),
)}


def load_link(name_or_file: Union[str, Path]) -> Link:
    """A built-in link by name, or a user profile from a .json/.yaml/.yml file."""
    if str(name_or_file) in BUILTIN:
        return BUILTIN[str(name_or_file)]
    path = Path(name_or_file)
    if path.suffix.lower() not in LINK_FILE_SUFFIXES:
        raise UsageError(f"unknown link {str(name_or_file)!r}; built-in links: "
                         f"{', '.join(BUILTIN)}; or give a .json/.yaml profile file")
    return link_from_dict(read_mapping(path, "link profile"), str(path))


def link_from_dict(data: dict, where: str = "link profile") -> Link:
    """A user link: name, source and rate_bps (or a ``lora`` mapping) are required."""
    known = {"name", "rate_bps", "source", "tx_watts", "frame_payload_bytes",
             "frame_overhead_bytes", "per_frame_ms", "lora", "duty_cycle", "frame_loss",
             "retry_wait_ms"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"{where}: unknown fields {unknown}; known: {sorted(known)}")
    for key in ("name", "source"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise UsageError(f"{where}: {key!r} is required (a non-empty string): every link "
                             "profile names where its numbers come from")
    fields = dict(data)
    if fields.get("lora") is not None:
        if not isinstance(fields["lora"], dict):
            raise UsageError(f"{where}: 'lora' must be a mapping (sf, bw_hz, cr, ...)")
        try:
            lora = LoRa(**fields["lora"])
        except TypeError as exc:
            raise UsageError(f"{where}: lora: {exc}") from None
        fields["lora"] = lora
        fields.setdefault("rate_bps", lora.bit_rate)
        fields.setdefault("frame_payload_bytes", LORA_MAX_PAYLOAD)
    for key in ("rate_bps", "tx_watts", "per_frame_ms"):
        value = fields.get(key)
        if value is not None and (not isinstance(value, (int, float)) or value < 0
                                  or (key == "rate_bps" and value == 0)):
            raise UsageError(f"{where}: {key} must be a positive number, got {value!r}")
    _check_limits(fields, where)
    if "rate_bps" not in fields:
        raise UsageError(f"{where}: 'rate_bps' is required (or a 'lora' mapping)")
    payload = fields.get("frame_payload_bytes")
    if payload is not None and (not isinstance(payload, int) or payload <= 0):
        raise UsageError(f"{where}: frame_payload_bytes must be a positive integer, "
                         f"got {payload!r}")
    if fields.get("lora") is not None and payload > LORA_MAX_PAYLOAD:
        raise UsageError(f"{where}: LoRa frames carry at most {LORA_MAX_PAYLOAD} B, got {payload}")
    return Link(**fields)


def _check_limits(fields: dict, where: str) -> None:
    """duty_cycle in (0, 1], frame_loss in [0, 1), retry_wait_ms >= 0."""
    for key, ok, expected in (
            ("duty_cycle", lambda v: v is None or 0 < v <= 1, "a fraction in (0, 1], e.g. 0.01"),
            ("frame_loss", lambda v: 0 <= v < 1, "a probability in [0, 1)"),
            ("retry_wait_ms", lambda v: v >= 0, "a number of ms >= 0")):
        value = fields.get(key, 0.0 if key != "duty_cycle" else None)
        number = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
        if not number or not ok(value):
            raise UsageError(f"{where}: {key} must be {expected}, got {value!r}")
