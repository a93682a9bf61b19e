"""The decoder as a fixed-shape streaming step, exported for the runtimes that are not torch.

``DecoderStep`` runs one block of ``block`` frames: curves (1, block, 7), the timbre code
(1, 16) and every layer's past, end to end in one tensor (1, sum of contexts, channels), in;
raw controls (1, block, n_raw) and the new past out. (One state tensor, not one per layer:
each input and output of a call costs a runtime's bindings time, ~10 us each.) Static shapes and no data-dependent control flow, so one file
serves impacts of every length (the runtime pads the last block; the decoder is causal, so
padding changes nothing before it) and the head-first render (the head is the first block).

What is not exported: the synthesiser. Its inverse FFT and the scatter of partials into bins
have no TensorRT kernels and need opset features ONNX Runtime's CPU build runs slower than
numpy; it is small and has no weights, so each runtime runs its own: numpy for ``onnx``
(synth/numpy_synth.py), torch on the GPU for ``tensorrt``.

Each export records what it came from (the checkpoint's SHA-256, the model settings, the
block) so a runtime can refuse a file exported from another checkpoint or architecture.

    neurorack export --format onnx --out models/default/decoder.onnx
"""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from .. import descriptors as D
from ..errors import NeurorackError
from ..fileio import atomic_open
from .backends import EXPORT_FORMAT, EXPORT_VERSION
from .checkpoint import load_checkpoint
from .impact_model import ImpactModel
from .paths import checkpoint_sha256

DEFAULT_BLOCK = 64  # frames: the head (streaming.HEAD_FRAMES + 1 of look-ahead) fits one block; fewer calls than 32 (docs/benchmarks.md)
FORMATS = ("onnx", "exported-program")


class DecoderStep(nn.Module):
    def __init__(self, model: ImpactModel):
        super().__init__()
        self.decoder = model.decoder
        self.contexts = [b.context for b in model.decoder.blocks]

    def forward(self, curves: torch.Tensor, timbre: torch.Tensor, past: torch.Tensor):
        x = torch.cat([curves, timbre.unsqueeze(1).expand(-1, curves.shape[1], -1)], dim=-1)
        raw, new_past = self.decoder(x, list(torch.split(past, self.contexts, dim=1)))
        return raw, torch.cat(new_past, dim=1)


def example_inputs(model: ImpactModel, block: int, device="cpu") -> tuple[torch.Tensor, ...]:
    past = torch.cat(model.decoder.initial_state(1), dim=1)
    return (torch.zeros(1, block, len(D.NAMES), device=device), torch.zeros(1, D.TIMBRE_BANDS, device=device),
            past.to(device))


def input_names(model: ImpactModel) -> list[str]:
    return ["curves", "timbre", "past"]


def output_names(model: ImpactModel) -> list[str]:
    return ["raw", "next"]


def describe(model: ImpactModel, checkpoint: Path, payload: dict, block: int) -> dict:
    """What an export records about its source (as strings: ONNX metadata holds strings)."""
    meta = payload.get("meta", {})
    return {
        "format": EXPORT_FORMAT, "version": str(EXPORT_VERSION), "block": str(block),
        "model_sha256": checkpoint_sha256(checkpoint),
        "config": json.dumps(model.config.to_dict()),
        "parameters": str(model.parameter_count()),
        "meta": json.dumps({k: meta[k] for k in ("n_parameters", "settings") if k in meta}),
        "contexts": json.dumps([b.context for b in model.decoder.blocks]),
        "channels": str(model.decoder.channels),
    }


def export(checkpoint, out, fmt: str = "onnx", block: int = DEFAULT_BLOCK, int8: bool = False) -> dict:
    """Export the checkpoint's decoder step to `out`, atomically. Returns what was recorded.

    ``int8``: ONNX Runtime's dynamic quantisation, weights stored as int8 (activations stay
    float and are quantised per call): a quarter of the file, measured in docs/benchmarks.md."""
    if int8 and fmt != "onnx":
        raise NeurorackError("--int8 quantises an ONNX export; give --format onnx")
    if fmt not in FORMATS:
        raise NeurorackError(f"unknown export format {fmt!r}; choose {' or '.join(FORMATS)}")
    if not 1 <= block <= 1000:
        raise NeurorackError(f"--block {block}: a block is 1 to 1000 frames")
    out = Path(out)
    if out.is_dir():
        raise NeurorackError(f"{out} is a folder; give the file to write")
    checkpoint = Path(checkpoint)
    model, payload = load_checkpoint(checkpoint)
    step = DecoderStep(model).eval()
    inputs = example_inputs(model, block)
    info = describe(model, checkpoint, payload, block)
    if int8:
        info["weights"] = "int8"
    with torch.inference_mode():
        data = _onnx_bytes(step, inputs, model, info, int8) if fmt == "onnx" else _program_bytes(step, inputs, info)
    with atomic_open(out, "wb") as f:
        f.write(data)
    return info


def _onnx_bytes(step: DecoderStep, inputs, model: ImpactModel, info: dict, int8: bool = False) -> bytes:
    try:
        import onnx
    except ImportError:
        raise NeurorackError("exporting to ONNX needs the 'onnx' package (pip install 'neurorack[export]')") from None
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notice
        # The TorchScript-based exporter: it writes a plain graph of MatMul, LayerNorm, Gelu and
        # Concat that every ONNX Runtime and TensorRT 10 parse (opset 17: LayerNormalization).
        torch.onnx.export(step, inputs, buffer, input_names=input_names(model), output_names=output_names(model),
                          opset_version=17, dynamo=False, do_constant_folding=True)
    proto = onnx.load_from_string(buffer.getvalue())
    if int8:
        proto = _quantised(proto)
    proto.producer_name = "neurorack"
    for key, value in info.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"neurorack.{key}", value
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _quantised(proto):
    """Dynamic int8 quantisation of the MatMul weights (ONNX Runtime's tool works on files)."""
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp, "float.onnx"), Path(tmp, "int8.onnx")
        onnx.save(proto, source)
        quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        return onnx.load(target)


def _program_bytes(step: DecoderStep, inputs, info: dict) -> bytes:
    program = torch.export.export(step, inputs, strict=False)
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={"neurorack.json": json.dumps(info)})
    return buffer.getvalue()


def load_program(path):
    """-> (torch.export.ExportedProgram, recorded info) of an exported-program file."""
    extra = {"neurorack.json": ""}
    try:
        program = torch.export.load(str(path), extra_files=extra)
        info = json.loads(extra["neurorack.json"] or "{}")
    except Exception as exc:  # torch raises many classes for a bad archive
        raise NeurorackError(f"{path} is corrupt or not an exported program ({type(exc).__name__})") from None
    if info.get("format") != EXPORT_FORMAT:
        raise NeurorackError(f"{path} is not a neurorack decoder export")
    return program, info
