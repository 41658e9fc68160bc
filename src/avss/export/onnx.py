"""ONNX export of audio-only separators, and a separator that runs the exported network in ONNX Runtime.

Only the learned core of a model is exported (`Separator.export_parts`): padding, STFT/iSTFT and level
normalisation stay in PyTorch, because torch.stft/istft do not export cleanly and cost nothing to learn. The
model's config is stored in the ONNX file's metadata (`avss_config`), so `OnnxSeparator.load(path)` rebuilds
those fixed steps without the PyTorch checkpoint.

    python -m avss.export.onnx checkpoints/cascade16.pt cascade16.onnx     # export
    python inference.py checkpoint=cascade16.onnx data_dir=... save_dir=...   # use (any entry point taking checkpoint=)
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

CONFIG_KEY = "avss_config"


def export_onnx(model, path, example_seconds: float = 2.0, opset: int = 17) -> Path:
    """Write the learned core of `model` to `path` (inputs and outputs keep dynamic batch and time axes)."""
    import onnx

    prepare, core, _ = model.export_parts()
    model.eval()
    mix = torch.randn(1, max(1, round(example_seconds * model.sample_rate))) * 0.1
    with torch.no_grad():
        inputs, _ = prepare(mix)
    names = [f"input{i}" for i in range(len(inputs))]
    axes = {name: {0: "batch", x.dim() - 1: "time"} for name, x in zip(names, inputs)}
    axes["output"] = {0: "batch"}  # time axis of the output follows the input; ONNX infers it
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # tracer notes about shape arithmetic; the equality test is the real check
        warnings.simplefilter("ignore")
        torch.onnx.export(core, inputs, str(path), input_names=names, output_names=["output"], dynamic_axes=axes,
                          opset_version=opset, dynamo=False)
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = CONFIG_KEY, json.dumps(model.config)
    onnx.save(proto, str(path))
    return path


class OnnxSeparator:
    """Runs an exported core in ONNX Runtime; duck-types the `Separator` interface that `separate_array`,
    `inference.py` and the benchmarks use (call with a mixture [B, L] tensor, get [B, S, L])."""

    needs_visual = False
    extra_inputs = ()

    def __init__(self, session, model):
        self.session, self._model = session, model.eval()  # `_model` supplies only the fixed pre/post steps
        self.sample_rate, self.n_src = model.sample_rate, model.n_src
        self.in_channels = getattr(model, "in_channels", 1)
        self.frame_hop = model.frame_hop  # test-time shift averaging spreads its shifts over one hop
        self.task = getattr(model, "task", "separation")
        self.config = model.config
        self.training = False
        self._prepare, _, self._finish = model.export_parts()
        self._names = [i.name for i in session.get_inputs()]

    @classmethod
    def load(cls, path, threads: int | None = None) -> "OnnxSeparator":
        import onnx
        import onnxruntime as ort

        from avss.models.base import build_from_config
        from avss.utils.weight_files import skip_weight_files

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: ONNX file not found")
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        if CONFIG_KEY not in meta:
            raise ValueError(f"{path}: not an avss ONNX export (no {CONFIG_KEY} metadata)")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        with skip_weight_files():  # the weights are in the graph: no file a config names (base_weights) is read
            return cls(session, build_from_config(json.loads(meta[CONFIG_KEY])))

    def __call__(self, mix: torch.Tensor, mouths=None) -> torch.Tensor:
        with torch.no_grad():
            inputs, state = self._prepare(mix.float().cpu())
            feeds = {name: x.numpy() for name, x in zip(self._names, inputs)}
            (out,) = self.session.run(None, feeds)
            return self._finish(torch.from_numpy(np.ascontiguousarray(out)), state)

    # the parts of nn.Module's interface that the inference code calls
    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def to(self, device):
        if torch.device(device).type != "cpu":
            raise ValueError("OnnxSeparator runs on the CPU (CPUExecutionProvider); use device=cpu")
        return self


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Export an avss checkpoint's network to ONNX.")
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of the tracing example")
    args = parser.parse_args(argv)
    from avss.models.base import Separator

    try:
        model = Separator.from_pretrained(args.checkpoint)
        export_onnx(model, args.output, args.seconds)
    except (FileNotFoundError, ValueError, NotImplementedError) as error:
        print(f"{args.checkpoint}: cannot export ({error})", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({args.output.stat().st_size / 2**20:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
