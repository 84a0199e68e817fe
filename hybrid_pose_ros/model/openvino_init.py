"""
A hybrid's window initialisation (ANN, heatmap, nine initial membranes) compiled by OpenVINO.

OpenVINO runs the whole graph in C++ and, through :meth:`OpenVinoWindowInit.submit`, on a thread
of its own that never waits for Python's GIL: the node's main thread steps the SNN meanwhile
without either slowing the other, and the ANN's result is ready when the window's first bin is
stepped. On this project's 2-core CPU (``cpu`` preset, bfloat16, one thread, after 33 ms idle as
in the node) it takes 6.0 ms at the median where torch's prepacked bfloat16 ANN takes 8.6 ms, and
in the node (where torch's ANN thread shares the GIL with the main thread) the third bin of a
window at 33 ms messages came 4-7 ms earlier.

The graph is taken with :func:`torch.export.export` from a float32 copy of the eval-mode model
(OpenVINO folds its BatchNorms) and converted with :func:`openvino.convert_model`. That takes
seconds (4 s at ``cpu``), so the converted model is kept in a cache directory, keyed by the
weights, the configuration, the library versions and :data:`CACHE_FORMAT`, and later starts read
it back (0.2 s). ``precision`` ``bfloat16`` runs every layer (the state initialisers too) in
bfloat16; ``float32`` matches the torch model within float rounding.

``int8`` quantises the convolutions with NNCF's post-training quantisation, calibrated on the
training ANN inputs a checkpoint stores (``HybridPoseNet.ann_calibration``); the other layers
stay float32. At ``cpu`` it takes 4.1 against 5.2 ms for bfloat16 after 33 ms idle (2.8 against
4.7 ms back to back), and the test-split MPJPE stays within 0.1 px of float32
(``hybrid_pose_evaluate --ann-precision int8``). Quantisation takes a few seconds and is cached
with the conversion; the key then also covers the calibration inputs and NNCF's version.
"""
import contextlib
import copy
import hashlib
import importlib.util
import io
import logging
import os
import pathlib
import tempfile
import warnings

from hybrid_pose_ros.model.hybrid import HybridPoseNet, WindowState
import numpy as np
import torch
from torch import nn

OPENVINO_PRECISIONS = {'float32': 'f32', 'bfloat16': 'bf16', 'int8': 'f32'}
"""``ann_precision`` values and OpenVINO's inference precision hint for each (``int8``: for the
layers left unquantised)."""

QUANTISATION = {'preset': 'performance', 'fast_bias_correction': True}
"""NNCF's post-training quantisation settings for ``int8`` (part of the cache key)."""

INT8_NEEDS_CALIBRATION = ('ann_precision int8 needs calibration inputs, which this checkpoint '
                          'does not store; add them with hybrid_pose_calibrate')
INT8_NEEDS_NNCF = 'ann_precision int8 needs the nncf package, which is not installed'

CACHE_FORMAT = 2
"""Version of the converted graph's interface (outputs NHWC); part of the cache key."""


def openvino_available() -> bool:
    """Whether the ``openvino`` package imports (installed and loadable)."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def nncf_available() -> bool:
    """Whether NNCF (``int8`` quantisation) is installed; checked without importing it."""
    return importlib.util.find_spec('nncf') is not None


def default_cache_dir() -> pathlib.Path:
    """Where converted models are kept: ``$XDG_CACHE_HOME/hybrid_pose_ros/openvino``."""
    base = os.environ.get('XDG_CACHE_HOME') or pathlib.Path.home() / '.cache'
    return pathlib.Path(base) / 'hybrid_pose_ros' / 'openvino'


class _WindowInitGraph(nn.Module):
    """``ann_input -> (heatmap, *membranes)``: the part of a hybrid that OpenVINO runs."""

    def __init__(self, model: HybridPoseNet) -> None:
        super().__init__()
        self.ann = model.ann
        self.initializers = model.initializers

    def forward(self, ann_input: torch.Tensor) -> tuple[torch.Tensor, ...]:
        heatmap, features = self.ann(ann_input)
        return (heatmap, *self.initializers(features))


def _cache_key(graph: nn.Module, model: HybridPoseNet, calibration: np.ndarray | None) -> str:
    """Hash of everything the converted (and, with ``calibration``, quantised) model depends on."""
    import openvino
    digest = hashlib.sha256()
    digest.update(f'format {CACHE_FORMAT}'.encode())
    digest.update(repr(model.config).encode())
    digest.update(f'openvino {openvino.__version__} torch {torch.__version__}'.encode())
    for name, tensor in graph.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    if calibration is not None:
        from importlib.metadata import version
        digest.update(f'int8 nncf {version("nncf")} {sorted(QUANTISATION.items())}'.encode())
        digest.update(repr(calibration.shape).encode())
        digest.update(np.ascontiguousarray(calibration).tobytes())
    return digest.hexdigest()[:32]


def _quantised(converted, calibration: np.ndarray):
    """Return ``converted`` with its convolutions quantised to int8 on ``calibration``."""
    import nncf
    nncf.set_log_level(logging.ERROR)
    samples = [window[None].astype(np.float32) for window in calibration]
    with contextlib.redirect_stdout(io.StringIO()):   # NNCF's progress bars, not in a node's log
        return nncf.quantize(converted, nncf.Dataset(samples), subset_size=len(samples),
                             preset=nncf.QuantizationPreset(QUANTISATION['preset']),
                             fast_bias_correction=QUANTISATION['fast_bias_correction'])


def _converted_model(model: HybridPoseNet, cache_dir: pathlib.Path | None,
                     calibration: np.ndarray | None = None):
    """
    Return the OpenVINO model of ``model``'s window initialisation, from the cache if there.

    With ``calibration`` (uint8 ANN inputs) its convolutions are quantised to int8.
    """
    import openvino
    config = model.config
    graph = _WindowInitGraph(model)   # shares the model's modules: hashed, not changed
    shape = (1, config.ann_in_channels, config.input_height, config.input_width)
    path = None
    if cache_dir is not None:
        key = _cache_key(graph, model, calibration)
        path = pathlib.Path(cache_dir) / f'window_init_{key}.xml'
        if path.exists() and path.with_suffix('.bin').exists():
            try:
                return openvino.Core().read_model(path)
            except RuntimeError:
                pass   # a damaged cache entry is converted again and replaced
    with torch.no_grad(), warnings.catch_warnings():
        # torch's own pytree code warns about itself while OpenVINO copies the export
        warnings.filterwarnings('ignore', message='`isinstance.treespec, LeafSpec.`',
                                category=FutureWarning)
        exported = torch.export.export(copy.deepcopy(graph).float().cpu().eval(),
                                       (torch.zeros(shape),))
        converted = openvino.convert_model(exported)
    converted.reshape(list(shape))
    # outputs channels-last (OpenVINO transposes on its own thread): the SNN steps on HWC arrays
    layouts = openvino.preprocess.PrePostProcessor(converted)
    for index in range(len(converted.outputs)):
        layouts.output(index).model().set_layout(openvino.Layout('NCHW'))
        layouts.output(index).tensor().set_layout(openvino.Layout('NHWC'))
    converted = layouts.build()
    if calibration is not None:
        converted = _quantised(converted, calibration)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
                scratch_xml = pathlib.Path(scratch) / path.name
                openvino.save_model(converted, scratch_xml, compress_to_fp16=False)
                os.replace(scratch_xml.with_suffix('.bin'), path.with_suffix('.bin'))
                os.replace(scratch_xml, path)
        except OSError:
            pass   # a read-only cache only costs the conversion at the next start
    return converted


class PendingWindowInit:
    """A window initialisation running in OpenVINO; :meth:`result` waits for its state."""

    def __init__(self, request) -> None:
        self._request = request
        self._state: WindowState | None = None
        self._cancelled = False

    def result(self) -> WindowState:
        """Wait for the inference and return the window state (raises what OpenVINO raised)."""
        if self._cancelled:
            raise RuntimeError('the window initialisation was cancelled')
        if self._state is None:
            self._request.wait()
            self._state = _window_state(self._request)[0]
        return self._state

    def done(self) -> bool:
        """Whether the inference has finished (or was cancelled)."""
        return self._cancelled or self._request.wait_for(0)

    def cancel(self) -> bool:
        """Stop the inference if it still runs; :meth:`result` raises afterwards."""
        if self._state is None:
            self._request.cancel()
            self._cancelled = True
        return self._cancelled


def _window_state(request) -> tuple[WindowState, torch.Tensor]:
    """Copy a finished request's outputs into a fresh window state and heatmap (channels-last)."""
    outputs = [torch.from_numpy(request.get_output_tensor(index).data.copy()).permute(0, 3, 1, 2)
               for index in range(len(request.model_outputs))]
    return WindowState(tuple(outputs[1:]), outputs[0]), outputs[0]


class OpenVinoWindowInit:
    """
    The ANN and state initialisers of ``model`` as one OpenVINO graph on the CPU.

    Calling it matches :meth:`HybridPoseNet.init_window` (same state and heatmap, up to the
    rounding of ``precision``); :meth:`submit` starts the same work on OpenVINO's thread and
    returns at once. ``threads`` is OpenVINO's thread count for one inference. ``int8`` needs
    NNCF and the model's ``ann_calibration``.
    """

    def __init__(self, model: HybridPoseNet, precision: str = 'float32', threads: int = 1,
                 cache_dir: pathlib.Path | None = None) -> None:
        if precision not in OPENVINO_PRECISIONS:
            raise ValueError(f'unknown precision {precision!r}; expected one of '
                             f'{tuple(OPENVINO_PRECISIONS)}')
        if threads < 1:
            raise ValueError(f'thread count must be at least 1, got {threads}')
        calibration = None
        if precision == 'int8':
            calibration = model.ann_calibration
            if calibration is None:
                raise ValueError(INT8_NEEDS_CALIBRATION)
            if not nncf_available():
                raise ValueError(INT8_NEEDS_NNCF)
        import openvino
        self.precision = precision
        self.threads = threads
        self._compiled = openvino.Core().compile_model(
            _converted_model(model, cache_dir, calibration), 'CPU', {
                'INFERENCE_PRECISION_HINT': OPENVINO_PRECISIONS[precision],
                'INFERENCE_NUM_THREADS': threads,
                'NUM_STREAMS': 1,
                'PERFORMANCE_HINT': 'LATENCY',
                'ENABLE_CPU_PINNING': False,   # the SNN's thread must stay free to move
            })
        self._request = self._compiled.create_infer_request()

    def __call__(self, ann_input: torch.Tensor) -> tuple[WindowState, torch.Tensor]:
        """Initialise windows from ``ann_input [B, ann_in_channels, H, W]`` and wait for them."""
        results = []
        for item in ann_input.split(1):   # the graph is compiled for one window at a time
            self._request.infer({0: _as_array(item)})
            results.append(_window_state(self._request))
        if len(results) == 1:
            return results[0]
        membranes = tuple(torch.cat(layer) for layer in zip(*(s.membranes for s, _ in results)))
        heatmap = torch.cat([h for _, h in results])
        return WindowState(membranes, heatmap), heatmap

    def convolution_precisions(self) -> dict[str, int]:
        """Count the compiled convolutions per arithmetic OpenVINO runs them in (``u8``, ...)."""
        counts: dict[str, int] = {}
        for op in self._compiled.get_runtime_model().get_ops():
            info = op.get_rt_info()
            if info['layerType'].astype(str) == 'Convolution':
                precision = info['runtimePrecision'].astype(str)
                counts[precision] = counts.get(precision, 0) + 1
        return counts

    def submit(self, ann_input: torch.Tensor) -> PendingWindowInit:
        """Start initialising a window from ``ann_input``; the result waits in the handle."""
        request = self._compiled.create_infer_request()   # 25 us; keeps its own outputs
        request.start_async({0: _as_array(ann_input)})
        return PendingWindowInit(request)


def _as_array(ann_input: torch.Tensor):
    """Return the ANN input as a contiguous float32 NCHW numpy array on the CPU."""
    return ann_input.detach().to('cpu', torch.float32).contiguous().numpy()
