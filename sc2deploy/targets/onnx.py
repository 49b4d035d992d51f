"""Target ``onnx``: the fp32 head run with onnxruntime on the CPU."""

from typing import Optional

import numpy as np

from sc2deploy.bundle import Bundle
from sc2deploy.targets.runner import Runner


class OnnxRunner(Runner):
    """onnxruntime session over an ONNX artifact of the bundle."""

    def __init__(self, bundle: Bundle, artifact: str = "onnx", threads: Optional[int] = None):
        super().__init__(bundle.model["input"]["shape"])
        self.path = bundle.file(bundle.manifest["artifacts"][artifact]["file"])
        self.input_name = bundle.model["input"]["name"]
        self.threads = threads
        self._session = None

    def activate(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        self._session = ort.InferenceSession(str(self.path), options,
                                             providers=["CPUExecutionProvider"])

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self.input_name: x})[0]

    def deactivate(self) -> None:
        self._session = None
