"""Run an ONNX model with onnxruntime on seeded random inputs built from its declared inputs.

`Runner` takes a path (onnxruntime reads the weights itself, external data included) or an
in-memory ModelProto (the single-op models of calibration). Input shapes come from the graph
after ``--dim``/``--batch-size`` binding, the same binding `analyze` uses; every input must
end up fully static.

CUDA runs bind inputs and outputs on the device (IO binding), so host/device copies are not
timed; `sync()` waits for the device and is called at window edges.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from onnx import ModelProto

from ..errors import BindingError, MeasurementError, MissingWeightsError, ModelLoadError
from ..graph import TensorInfo, bind_dims, load_model, tensor_info_from_value_info

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}

_NUMPY_DTYPES = {
    "float32": np.float32, "float64": np.float64, "float16": np.float16,
    "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16,
    "int32": np.int32, "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64,
    "bool": np.bool_,
}

#: Integer inputs are drawn from [0, INT_HIGH): valid indices, masks and token ids alike.
INT_HIGH = 2


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _missing_weights_message(missing: list[tuple[str, str]], path: Path | None) -> str:
    files = ", ".join(sorted({location for _, location in missing}))
    folder = f" next to {path.name}" if path is not None else ""
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    return (f"measuring runs the model, so it needs its weights: the external data file "
            f"{files}{folder} is missing or incomplete ({missing[0][0]}{more}); "
            "`onnx-energy analyze` reads no weights and works without it")


def random_inputs(infos: list[TensorInfo], seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random arrays for static TensorInfos: floats N(0, 1), ints in [0, INT_HIGH)."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for info in infos:
        dtype = _NUMPY_DTYPES.get(info.dtype)
        if dtype is None:
            raise MeasurementError(
                f"input {info.name!r} has dtype {info.dtype or 'unknown'}, for which no random "
                "input can be generated; pass inputs explicitly through the Python API"
            )
        shape = tuple(int(d) for d in info.shape or () if isinstance(d, int))
        arr: np.ndarray
        if np.issubdtype(dtype, np.floating):
            arr = rng.standard_normal(shape, dtype=np.float32).astype(dtype)
        elif dtype is np.bool_:
            arr = rng.integers(0, 2, shape).astype(np.bool_)
        else:
            arr = rng.integers(0, INT_HIGH, shape).astype(dtype)
        feeds[info.name] = arr
    return feeds


class Runner:
    """One onnxruntime session plus its inputs; `run_once()` is one timed inference."""

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelProto,
        provider: str = "cpu",
        threads: int = 1,
        dims: Mapping[str, int] | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        inputs: Mapping[str, np.ndarray] | None = None,
        device: int = 0,
        profile_dir: str | os.PathLike[str] | None = None,
        save_optimized: str | os.PathLike[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        if provider not in PROVIDERS:
            raise MeasurementError(
                f"unknown provider {provider!r}; choose from {', '.join(PROVIDERS)}"
            )
        if threads < 1:
            raise MeasurementError(f"--threads must be at least 1, not {threads}")
        self.provider = provider
        self.threads = threads
        self.device = device
        self.seed = seed
        if isinstance(model, ModelProto):
            self.path: Path | None = None
            self.model_bytes: bytes | None = model.SerializeToString()
            self.sha256 = hashlib.sha256(self.model_bytes).hexdigest()
        else:
            self.path = Path(model)
            self.model_bytes = None
        loaded = load_model(model)  # validates and never reads weights
        if loaded.missing_data:
            raise MissingWeightsError(_missing_weights_message(loaded.missing_data, self.path))
        if self.path is not None:
            self.sha256 = sha256_file(self.path)
        self.bindings = bind_dims(loaded, dims, batch_size)
        if loaded.overrides:  # analysis may re-batch a fixed export; onnxruntime cannot
            name = next(iter(loaded.overrides))
            declared = loaded.overrides[name][0]
            lead = declared[0] if declared else "?"
            raise MeasurementError(
                f"input {name!r} has a fixed batch of {lead}; "
                f"onnxruntime runs the file's shape, so --batch-size {batch_size} cannot be "
                "measured")
        self.batch_size = batch_size
        self.graph_proto = loaded.proto  # weight-free copy, for mapping profiles to nodes
        self.weight_names = frozenset(loaded.weights)  # initializers, detached or not
        self.input_infos = self._static_inputs(loaded)
        if inputs is None:
            self.feeds = random_inputs(self.input_infos, seed)
        else:
            missing = [i.name for i in self.input_infos if i.name not in inputs]
            if missing:
                raise MeasurementError(f"inputs missing: {', '.join(missing)}")
            self.feeds = {i.name: np.asarray(inputs[i.name]) for i in self.input_infos}

        ep = PROVIDERS[provider]
        if ep not in ort.get_available_providers():
            hint = " (pip install 'onnx-energy[cuda]', which brings onnxruntime-gpu)" \
                if provider == "cuda" else ""
            raise MeasurementError(
                f"onnxruntime {ort.__version__} has no {ep}{hint}; available: "
                f"{', '.join(ort.get_available_providers())}"
            )
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        for name, value in self.bindings.items():
            so.add_free_dimension_override_by_name(name, int(value))
        if profile_dir is not None:
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(profile_dir) / "ort_profile")
        if save_optimized is not None:
            so.optimized_model_filepath = str(save_optimized)
            so.add_session_config_entry(
                "session.optimized_model_external_initializers_file_name", "weights.bin")
            so.add_session_config_entry(
                "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        providers: list[Any] = [ep] if provider == "cpu" else [
            (ep, {"device_id": device}), "CPUExecutionProvider"]
        source: Any = str(self.path) if self.path is not None else self.model_bytes
        try:
            self.session = ort.InferenceSession(source, so, providers=providers)
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"onnxruntime cannot load the model: {msg}") from None
        if self.session.get_providers()[0] != ep:
            raise MeasurementError(
                f"onnxruntime fell back to {self.session.get_providers()[0]} instead of {ep} "
                "(CUDA/cuDNN libraries missing?); refusing to report a CPU run as a CUDA one"
            )
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._binding = None
        if provider == "cuda":
            self._bind_on_device(ort)

    @staticmethod
    def _static_inputs(loaded: Any) -> list[TensorInfo]:
        infos: list[TensorInfo] = []
        by_name = {vi.name: vi for vi in loaded.proto.graph.input}
        for name in loaded.input_names:
            info = tensor_info_from_value_info(by_name[name])
            if info.shape is None:
                raise BindingError(f"input {name!r} has no declared shape; cannot generate it")
            unbound = [d for d in info.shape if not isinstance(d, int)]
            if unbound:
                named = [d for d in unbound if isinstance(d, str)]
                if named:
                    hint = " ".join(f"--dim {d}=N" for d in dict.fromkeys(named))
                    raise BindingError(
                        f"input {name!r} has unbound dims {', '.join(dict.fromkeys(named))}; "
                        f"bind them with {hint} (or --batch-size N for the leading one)"
                    )
                raise BindingError(
                    f"input {name!r} has a dimension without a value or name "
                    f"(shape {list(info.shape)}); only --batch-size can bind a leading one"
                )
            infos.append(info)
        return infos

    def _bind_on_device(self, ort: Any) -> None:
        binding = self.session.io_binding()
        self._device_inputs = {}
        for name, arr in self.feeds.items():
            value = ort.OrtValue.ortvalue_from_numpy(arr, "cuda", self.device)
            self._device_inputs[name] = value  # keep alive
            binding.bind_ortvalue_input(name, value)
        for name in self.output_names:
            binding.bind_output(name, "cuda", self.device)
        binding.synchronize_inputs()
        self._binding = binding

    def run_once(self) -> None:
        if self._binding is not None:
            self.session.run_with_iobinding(self._binding)
        else:
            self.session.run(self.output_names, self.feeds)

    def sync(self) -> None:
        """Wait until the device has finished all queued work (no-op on CPU)."""
        if self._binding is not None:
            self._binding.synchronize_outputs()

    def end_profiling(self) -> str:
        return self.session.end_profiling()

    def input_records(self) -> list[dict[str, Any]]:
        return [i.to_dict() for i in self.input_infos]


def temp_dir(prefix: str = "onnx-energy-") -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=prefix)
