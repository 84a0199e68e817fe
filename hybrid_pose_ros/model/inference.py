"""
Inference speed-ups that keep the results: BN folding, no autograd, prepacked convs, threads.

The SNN backend and the ANN precision are chosen here too.

:func:`fold_batchnorm` returns a copy in which every ``Conv2d -> BatchNorm2d`` pair inside an
``nn.Sequential`` (all SNN layers, the pure-SNN head and both halves of every state initialiser)
is replaced by one conv with the BN folded into its weight and bias (eval-mode statistics), and
the BN by ``nn.Identity``. The folded model computes the same function as the original in eval
mode, up to float rounding. Run it under ``torch.inference_mode()``.

A hybrid's ANN and state initialisers can run in OpenVINO instead of torch (``ann_runtime``,
:mod:`hybrid_pose_ros.model.openvino_init`): one compiled graph that runs without the GIL.

The SNN step has two backends with the same results: ``dense`` (torch convs) and ``sparse``
(:mod:`hybrid_pose_ros.model.sparse`, work proportional to the spikes, batch size 1).

The ANN can run in ``bfloat16`` on CPUs with native bfloat16 arithmetic (AVX512-BF16 or AMX):
1.3x faster at the ``cpu`` preset and 1.8x at ``paper`` on one thread, with the initial
membranes and heatmap handed to the float32 SNN. This changes results slightly (measure it with
``hybrid_pose_evaluate --ann-precision bfloat16``), so it is a choice (``ann_precision``).
In OpenVINO the ANN's convolutions can also run in ``int8``, calibrated on the training inputs
a checkpoint stores (:mod:`hybrid_pose_ros.model.openvino_init`). ``auto`` selects ``int8``
where that is possible (OpenVINO, NNCF and a calibrated checkpoint), else ``bfloat16`` where
it is native, else ``float32``.
"""
import copy
import itertools

from hybrid_pose_ros.model.ann import AnnOutput, AnnUNet
from hybrid_pose_ros.model.decode import decode_heatmaps
from hybrid_pose_ros.model.openvino_init import (
    default_cache_dir, INT8_NEEDS_CALIBRATION, INT8_NEEDS_NNCF, nncf_available,
    openvino_available, OpenVinoWindowInit)
from hybrid_pose_ros.model.packed import pack_convolutions, packing_available
from hybrid_pose_ros.model.sparse import use_sparse_snn
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Return an eval-mode copy of ``model`` with BatchNorm folded into the preceding convs."""
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for name, next_name in zip(names, names[1:]):
            conv, norm = module._modules[name], module._modules[next_name]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                module._modules[name] = fuse_conv_bn_eval(conv, norm)
                module._modules[next_name] = nn.Identity()
    return folded


def set_threads(count: int) -> int:
    """Use ``count`` intra-op threads for CPU inference; returns the previous count."""
    if count < 1:
        raise ValueError(f'thread count must be at least 1, got {count}')
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    return previous


SNN_BACKENDS = ('dense', 'sparse')
"""How the SNN step runs: torch convs, or the event-driven scatter kernels."""

ANN_PRECISIONS = ('float32', 'bfloat16', 'int8', 'auto')
"""ANN arithmetic: float32, bfloat16, int8 (OpenVINO only), or the fastest of them available."""

ANN_RUNTIMES = ('torch', 'openvino', 'auto')
"""What runs a hybrid's ANN and initialisers: torch, OpenVINO, or OpenVINO where it can."""


def native_bfloat16(device: torch.device | str = 'cpu') -> bool:
    """Whether ``device`` is a CPU with bfloat16 instructions (AVX512-BF16 or AMX)."""
    if torch.device(device).type != 'cpu':
        return False
    checks = ('_is_avx512_bf16_supported', '_is_amx_tile_supported')
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def has_ann_calibration(model: nn.Module) -> bool:
    """Whether ``model`` carries int8 calibration inputs (from a calibrated checkpoint)."""
    return getattr(model, 'ann_calibration', None) is not None


def resolve_ann_precision(requested: str, device: torch.device | str = 'cpu',
                          runtime: str = 'torch', calibrated: bool = False) -> str:
    """
    Turn ``auto`` into a precision for ``device`` and the resolved ``runtime``; check the others.

    ``auto`` is ``int8`` with OpenVINO, NNCF and ``calibrated`` inputs (the model's
    ``ann_calibration``), else ``bfloat16`` where it is native, else ``float32``. ``int8``
    without one of the three raises :class:`ValueError` saying which is missing.
    """
    if requested not in ANN_PRECISIONS:
        raise ValueError(f'unknown ann_precision {requested!r}; expected one of {ANN_PRECISIONS}')
    if requested == 'auto':
        if runtime == 'openvino' and calibrated and nncf_available():
            return 'int8'
        return 'bfloat16' if native_bfloat16(device) else 'float32'
    if requested == 'int8':
        if runtime != 'openvino':
            raise ValueError(f'ann_precision int8 runs in OpenVINO only, not with ann_runtime '
                             f'{runtime}')
        if not calibrated:
            raise ValueError(INT8_NEEDS_CALIBRATION)
        if not nncf_available():
            raise ValueError(INT8_NEEDS_NNCF + ' (pip install nncf)')
    return requested


class ReducedPrecisionAnn(nn.Module):
    """An :class:`AnnUNet` computing in ``dtype`` whose heatmap and features come back float32."""

    def __init__(self, ann: AnnUNet, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.config = ann.config
        self.dtype = dtype
        self.ann = ann.to(dtype)
        self.train(ann.training)

    def forward(self, x: torch.Tensor) -> AnnOutput:
        """Run the ANN in ``dtype`` on ``x``; return its outputs in float32."""
        heatmap, features = self.ann(x.to(self.dtype))
        return AnnOutput(heatmap.float(),
                         {name: value.float() for name, value in features.items()})


def with_ann_precision(model: nn.Module, precision: str) -> nn.Module:
    """
    Return ``model`` with its torch ANN computing in ``precision`` (``bfloat16`` or float32).

    A hybrid's ANN is replaced in place; an :class:`AnnUNet` itself comes back wrapped. Other
    precisions leave the torch ANN float32 (``int8`` exists in OpenVINO only).
    """
    if precision != 'bfloat16':
        return model
    if isinstance(model, AnnUNet):
        return ReducedPrecisionAnn(model, torch.bfloat16)
    if isinstance(getattr(model, 'ann', None), AnnUNet):
        model.ann = ReducedPrecisionAnn(model.ann, torch.bfloat16)
    return model


def resolve_ann_runtime(requested: str, device: torch.device | str = 'cpu') -> str:
    """Turn ``auto`` into ``openvino`` (a CPU with OpenVINO installed) or ``torch``."""
    if requested not in ANN_RUNTIMES:
        raise ValueError(f'unknown ann_runtime {requested!r}; expected one of {ANN_RUNTIMES}')
    on_cpu = torch.device(device).type == 'cpu'
    if requested == 'auto':
        return 'openvino' if on_cpu and openvino_available() else 'torch'
    if requested == 'openvino' and not on_cpu:
        raise ValueError(f'ann_runtime openvino runs on the CPU only, not on {device}')
    if requested == 'openvino' and not openvino_available():
        raise ValueError('ann_runtime openvino needs the openvino package, which is not '
                         'installed (pip install openvino)')
    return requested


def with_ann_runtime(model: nn.Module, runtime: str, precision: str = 'float32',
                     threads: int = 1) -> nn.Module:
    """
    Return ``model`` with a hybrid's window initialisation run by ``runtime`` (resolved here).

    ``openvino`` sets the hybrid's ``compiled_init`` to an
    :class:`~hybrid_pose_ros.model.openvino_init.OpenVinoWindowInit` in ``precision`` with
    ``threads`` threads, its converted model cached in the default cache directory. Call it
    before :func:`with_ann_precision`: OpenVINO converts the float32 ANN. Other models come back
    unchanged.
    """
    runtime = resolve_ann_runtime(runtime, model_device(model))
    if runtime == 'openvino' and isinstance(getattr(model, 'ann', None), AnnUNet):
        model.compiled_init = OpenVinoWindowInit(model, precision, threads, default_cache_dir())
    return model


def model_device(model: nn.Module) -> torch.device:
    """Device of a model's first parameter or buffer (CPU for one without tensors)."""
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    return torch.device('cpu') if tensor is None else tensor.device


def prepare_for_inference(model: nn.Module, threads: int | None = None,
                          channels_last: bool = True, snn_backend: str = 'dense',
                          ann_precision: str = 'float32', pack_convs: bool = True,
                          ann_runtime: str = 'torch') -> nn.Module:
    """
    Fold BatchNorm, switch to eval, drop gradients and optionally set the thread count.

    ``snn_backend='sparse'`` swaps the SNN of a hybrid or pure-SNN model for its event-driven
    twin (:func:`~hybrid_pose_ros.model.sparse.use_sparse_snn`). ``ann_precision``
    (:data:`ANN_PRECISIONS`, resolved by :func:`resolve_ann_precision`) sets the arithmetic of a
    hybrid's ANN (:class:`ReducedPrecisionAnn` for ``bfloat16``). ``ann_runtime``
    (:data:`ANN_RUNTIMES`) chooses what runs a hybrid's window initialisation
    (:func:`with_ann_runtime`, with ``threads`` threads, 1 if None). With ``pack_convs`` every
    remaining torch conv (ANN, initialisers, dense SNN) keeps a weight prepacked for oneDNN, with
    the following LeakyReLU fused (:mod:`hybrid_pose_ros.model.packed`), where the device allows
    it.

    With ``channels_last`` the conv weights use the NHWC layout, which oneDNN runs much faster on
    CPU for the small channel counts of the ``cpu`` preset; feed inputs through
    :func:`to_channels_last` too. Results are unchanged (same values, different strides).
    """
    if snn_backend not in SNN_BACKENDS:
        raise ValueError(f'unknown snn_backend {snn_backend!r}; expected one of {SNN_BACKENDS}')
    # a bad choice fails before any work
    ann_runtime = resolve_ann_runtime(ann_runtime, model_device(model))
    ann_precision = resolve_ann_precision(ann_precision, model_device(model), ann_runtime,
                                          has_ann_calibration(model))
    if threads is not None:
        set_threads(threads)
    prepared = fold_batchnorm(model)
    for parameter in prepared.parameters():
        parameter.requires_grad_(False)
    with_ann_runtime(prepared, ann_runtime, ann_precision, threads or 1)
    if channels_last:
        prepared = prepared.to(memory_format=torch.channels_last)
    if snn_backend == 'sparse':
        use_sparse_snn(prepared)
    if isinstance(getattr(prepared, 'ann', None), AnnUNet):   # a hybrid
        with_ann_precision(prepared, ann_precision)
    if pack_convs and packing_available(model_device(prepared)):
        pack_convolutions(prepared)
    return prepared


def to_channels_last(tensor: torch.Tensor) -> torch.Tensor:
    """Return ``tensor`` in NHWC layout (4-D tensors only; others unchanged)."""
    return tensor.contiguous(memory_format=torch.channels_last) if tensor.dim() == 4 else tensor


@torch.inference_mode()
def warm_up(model: nn.Module) -> None:
    """
    Run one window initialisation, one SNN step and one heatmap decode of a hybrid model on zeros.

    The first call of every conv primitive (oneDNN) and of the compiled kernels (Numba cache
    load) is slow; a node does it at startup, not at its first bin.
    """
    config = model.config
    device = model_device(model)
    ann_input = torch.zeros(1, config.ann_in_channels, config.input_height, config.input_width,
                            device=device)
    frame = torch.zeros(1, config.snn_in_channels, config.input_height, config.input_width,
                        device=device)
    state, _ = model.init_window(to_channels_last(ann_input))
    heatmap, _, _ = model.step(state, frame)
    decode_heatmaps(heatmap[0])
