"""How a runtime runs an artifact: intra-op threads, onnxruntime's graph optimization level and
its XNNPACK provider (torch-free).

``sc2deploy tune`` times the candidates on the CPU that runs the target and records the
fastest in the artifact's ``sessions_by_cpu``; ``profile`` runs with it there.
"""

from dataclasses import asdict, dataclass
from typing import Optional

from sc2deploy.errors import UsageError

OPTIMIZATIONS = ("basic", "extended", "all")  # onnxruntime's ORT_ENABLE_BASIC/EXTENDED/ALL
XNNPACK_PROVIDER = "XnnpackExecutionProvider"


@dataclass(frozen=True)
class SessionSettings:
    """Threads (None: the runtime's own choice), graph optimization (onnxruntime only),
    XNNPACK provider (onnxruntime wheels that have it; LiteRT always uses XNNPACK)."""

    threads: Optional[int] = None
    optimization: str = "all"
    xnnpack: bool = False

    def __post_init__(self):
        if self.threads is not None and (isinstance(self.threads, bool)
                                         or not isinstance(self.threads, int) or self.threads < 1):
            raise UsageError(f"session threads must be a positive integer or None, got "
                             f"{self.threads!r}")
        if self.optimization not in OPTIMIZATIONS:
            raise UsageError(f"graph optimization {self.optimization!r}: expected one of "
                             f"{', '.join(OPTIMIZATIONS)}")
        if not isinstance(self.xnnpack, bool):
            raise UsageError(f"xnnpack must be true or false, got {self.xnnpack!r}")

    def describe(self) -> str:
        threads = "default threads" if self.threads is None else \
            f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        return f"{threads}, optimization {self.optimization}" + (", XNNPACK" if self.xnnpack
                                                                  else "")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "session settings") -> "SessionSettings":
        if not isinstance(data, dict) or set(data) - {"threads", "optimization", "xnnpack"}:
            raise UsageError(f"{where}: expected a mapping of threads, optimization, xnnpack; "
                             f"got {data!r}")
        return cls(**data)


def onnxruntime_session_options(settings: SessionSettings):
    """(SessionOptions, providers) for ``settings``. With XNNPACK the provider gets the
    threads and onnxruntime's own pool one, as onnxruntime's XNNPACK notes advise."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[settings.optimization]
    providers = ["CPUExecutionProvider"]
    if settings.xnnpack:
        if XNNPACK_PROVIDER not in ort.get_available_providers():
            raise UsageError(f"this onnxruntime ({ort.__version__}) has no {XNNPACK_PROVIDER}; "
                             f"it has {', '.join(ort.get_available_providers())}")
        options.intra_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        xnn = {"intra_op_num_threads": str(settings.threads)} if settings.threads else {}
        providers = [(XNNPACK_PROVIDER, xnn), "CPUExecutionProvider"]
    elif settings.threads:
        options.intra_op_num_threads = settings.threads
        options.inter_op_num_threads = 1
    return options, providers
