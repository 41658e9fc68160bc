"""Runtime efficiency of a separator: latency, real-time factor, peak memory, training-step time, size on disk.

Also the body of the `measure_efficiency.py` entry point (`run`). Conventions used in every figure:

* 1 MB = 2**20 bytes (checkpoint size and memory alike).
* Inputs are random: a mixture of `duration` s at the model's rate ([B, L], or [B, C, L] when `in_channels` > 1)
  and, for models with `needs_visual`, uint8 mouth frames at `video_fps` ([B, T, 96, 96] for extraction models,
  [B, n_src, T, 96, 96] for audio-visual separation models), and for voiceprint models (`"enrollment"` in
  `extra_inputs`) an enrolment utterance of ENROLLMENT_SECONDS per target, which the speaker encoder embeds
  inside the forward pass (so its cost is counted in latency, and reported apart in MACs and params).
* MACs are counted for one mixture (batch 1) by `avss.utils.complexity`, visual frontend reported apart.
* Latency: mean and standard deviation of `repeats` forward passes in eval mode under `torch.inference_mode`,
  after `warmup` untimed passes (CUDA: synchronised). RTF = mean latency / duration (for the whole batch).
* Peak memory of one forward pass, on top of what is resident before it (weights, inputs, libraries):
  - CPU: in a fresh Python process that loads the saved checkpoint, builds the inputs and runs one short
    (0.1 s) warm-up pass so that one-time costs (thread pool, kernel code paged in) are not counted. glibc is
    told to mmap every allocation >= 64 kB (MALLOC_MMAP_THRESHOLD_) and free heap is trimmed (malloc_trim)
    before the pass, so the figure tracks the tensors alive at the peak rather than what the allocator kept
    from loading the checkpoint (without this it varied between runs by up to 2x). The child then resets the
    kernel's peak-RSS mark (`echo 5 > /proc/self/clear_refs`), runs the forward pass and reports
    VmHWM - VmRSS(before) from /proc/self/status. Where /proc is not writable, RSS is sampled with psutil
    every 0.5 ms during the pass instead (may miss short peaks). The method used is returned with the figure.
    Run with the same number of torch threads as the caller (per-thread scratch buffers are included).
  - CUDA: torch.cuda.max_memory_allocated() - memory_allocated() before the pass (tensors only; no allocator
    cache or CUDA context).
* Training step: forward + negative SI-SNR loss (PIT for separation models) + backward + Adam step on a copy of
  the model in train mode, batch `batch_size` of `duration` s; mean over `train_repeats` steps after `warmup`
  (at least one) untimed steps.
"""
from __future__ import annotations

import copy
import gc
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from avss.utils.complexity import macs_breakdown, param_breakdown

MB = 2**20
WARMUP_SECONDS = 0.1  # length of the warm-up pass in the peak-memory child process
# glibc: serve every allocation >= 64 kB by mmap (fixed threshold) so freed tensors go back to the OS at once and
# the peak RSS follows the live memory instead of the allocator's history (heap reuse made it vary by 2x).
CHILD_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}
ENROLLMENT_SECONDS = 3.0  # LiMuSE's training enrolment length
ALL_MODELS = "all"  # `model=all`: measure every config in configs/model/

RESULT_KEYS = ("model", "params", "params_frontend", "macs", "macs_per_second", "size_mb", "peak_memory_mb",
               "latency_ms", "rtf", "train_step_s")


# ---- inputs ----------------------------------------------------------------------------------------------
def make_inputs(model, duration: float, batch_size: int = 1, device="cpu", seed: int = 0) -> tuple:
    """Random forward arguments for `model`: (mix,), (mix, mouths) or (mix, mouths, enrollment); see the module
    docstring for shapes."""
    gen = torch.Generator().manual_seed(seed)
    length = max(1, round(duration * model.sample_rate))
    channels = getattr(model, "in_channels", 1)
    shape = (batch_size, length) if channels == 1 else (batch_size, channels, length)
    mix = (0.1 * torch.randn(shape, generator=gen)).to(device)
    if not getattr(model, "needs_visual", False):
        return (mix,)
    frames = max(1, round(duration * getattr(model, "video_fps", 25)))
    lead = (batch_size,) if getattr(model, "task", "separation") == "extraction" else (batch_size, model.n_src)
    mouths = torch.randint(0, 256, (*lead, frames, 96, 96), dtype=torch.uint8, generator=gen).to(device)
    if "enrollment" not in getattr(model, "extra_inputs", ()):
        return (mix, mouths)
    enrollment = 0.1 * torch.randn(*lead, round(ENROLLMENT_SECONDS * model.sample_rate), generator=gen)
    return (mix, mouths, enrollment.to(device))


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


# ---- size on disk ----------------------------------------------------------------------------------------
def save_checkpoint(model, path) -> Path:
    path = Path(path)
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(path)
    else:
        torch.save(model.state_dict(), path)
    return path


def checkpoint_size_mb(model) -> float:
    """Size in MB of the file `save_pretrained` writes (config + weights)."""
    with tempfile.TemporaryDirectory() as tmp:
        return save_checkpoint(model, Path(tmp) / "model.pt").stat().st_size / MB


# ---- latency ---------------------------------------------------------------------------------------------
def measure_latency(model, inputs: tuple, repeats: int = 10, warmup: int = 2, device="cpu") -> tuple[float, float]:
    """(mean, std) in ms of `repeats` forward passes after `warmup` untimed ones (eval, inference_mode)."""
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            _sync(device)
            start = time.perf_counter()
            model(*inputs)
            _sync(device)
            if i >= warmup:
                times.append(1e3 * (time.perf_counter() - start))
    return statistics.fmean(times), (statistics.stdev(times) if len(times) > 1 else 0.0)


# ---- peak memory -----------------------------------------------------------------------------------------
def _proc_status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return int(re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.M).group(1))


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return _proc_status_kb("VmHWM") <= _proc_status_kb("VmRSS") + 64  # really reset
    except (OSError, AttributeError):
        return False


def _release_free_heap() -> None:
    """Hand memory that malloc keeps after frees back to the OS (glibc), so a later pass needs fresh pages."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_increase_mb(fn) -> tuple[float, str]:
    """Run `fn()` and return (peak RSS increase in MB over the RSS just before it, method)."""
    gc.collect()
    _release_free_heap()
    if _reset_peak_rss():
        before = _proc_status_kb("VmRSS")
        fn()
        return max(0, _proc_status_kb("VmHWM") - before) / 1024, "peak RSS increase (VmHWM after clear_refs)"
    import psutil

    proc = psutil.Process()
    before = proc.memory_info().rss
    peak, done = [before], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return max(0, peak[0] - before) / MB, "peak RSS increase (psutil sampling every 0.5 ms)"


def _child_peak_memory(checkpoint: str, duration: float, batch_size: int, threads: int) -> dict:
    from avss.models.base import Separator

    torch.set_num_threads(threads)
    model = Separator.from_pretrained(checkpoint)
    inputs = make_inputs(model, duration, batch_size)
    with torch.inference_mode():
        model(*make_inputs(model, min(duration, WARMUP_SECONDS), batch_size))

    def forward():
        with torch.inference_mode():
            model(*inputs)

    peak, method = rss_increase_mb(forward)
    malloc = ", ".join(f"{k}={v}" for k, v in CHILD_MALLOC_ENV.items() if os.environ.get(k) == v)
    return {"peak_memory_mb": peak, "method": f"{method}, fresh process" + (f", {malloc}" if malloc else "")}


def peak_memory_mb(model, duration: float, batch_size: int = 1, device="cpu", checkpoint=None) -> tuple[float, str]:
    """Peak memory in MB of one forward pass on top of the resident model and inputs, and the method used."""
    device = torch.device(device)
    if device.type == "cuda":
        inputs = make_inputs(model, duration, batch_size, device)
        model.eval()
        with torch.inference_mode():
            model(*make_inputs(model, min(duration, WARMUP_SECONDS), batch_size, device))
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        with torch.inference_mode():
            model(*inputs)
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / MB, "torch.cuda.max_memory_allocated - before"
    with tempfile.TemporaryDirectory() as tmp:
        if checkpoint is None:
            checkpoint = save_checkpoint(model, Path(tmp) / "model.pt")
        cmd = [sys.executable, "-m", "avss.utils.benchmark", "peak-memory", str(checkpoint), repr(float(duration)),
               str(batch_size), str(torch.get_num_threads())]
        env = {**os.environ, **CHILD_MALLOC_ENV}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"peak-memory subprocess failed: {proc.stderr.strip().splitlines()[-1:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["peak_memory_mb"], result["method"]


# ---- training step ---------------------------------------------------------------------------------------
def train_step_seconds(model, duration: float, batch_size: int = 1, device="cpu", repeats: int = 3,
                       warmup: int = 1, lr: float = 1e-3) -> float:
    """Mean time in s of forward + SI-SNR loss + backward + Adam step, after `warmup` (>= 1) untimed steps.

    Runs on a copy of the model. The first steps are much slower than the later ones (on CPU the first two
    took 5-10x longer: kernels set up for gradient mode, Adam state allocated), hence the warm-up.
    """
    warmup = max(1, warmup)
    from avss.losses import SeparationLoss

    model = copy.deepcopy(model).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = SeparationLoss("si_snr", pit=getattr(model, "task", "separation") == "separation")
    inputs = make_inputs(model, duration, batch_size, device)
    gen = torch.Generator().manual_seed(1)
    sources = torch.randn(batch_size, model.n_src, inputs[0].shape[-1], generator=gen).to(device)
    times = []
    for i in range(warmup + repeats):
        _sync(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss, _ = loss_fn(model(*inputs), sources)
        loss.backward()
        optimizer.step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.fmean(times)


# ---- everything for one model ----------------------------------------------------------------------------
def measure(model, name: str, duration: float = 2.0, device="cpu", batch_size: int = 1, repeats: int = 10,
            warmup: int = 2, train_step: bool = True, train_repeats: int = 3, peak_memory: bool = True) -> dict:
    """All figures for one model as a JSON-ready dict (keys: RESULT_KEYS and a few settings)."""
    device = torch.device(device)
    model = model.to(device).eval()
    params = param_breakdown(model)
    macs = macs_breakdown(model, *make_inputs(model, duration, 1, device))
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = save_checkpoint(model.cpu(), Path(tmp) / "model.pt")
        size = checkpoint.stat().st_size / MB
        model.to(device)
        peak, method = (peak_memory_mb(model, duration, batch_size, device, checkpoint=checkpoint) if peak_memory
                        else (None, "not measured"))
    latency, latency_std = measure_latency(model, make_inputs(model, duration, batch_size, device), repeats, warmup,
                                           device)
    step = train_step_seconds(model, duration, batch_size, device, train_repeats, warmup) if train_step else None
    return {
        "model": name,
        "params": params["separator"],
        "params_frontend": params["frontend"],
        "macs": macs.separator / 1e9,
        "macs_frontend": macs.frontend / 1e9,
        "macs_per_second": macs.separator / 1e9 / duration,
        "size_mb": size,
        "peak_memory_mb": peak,
        "latency_ms": latency,
        "latency_std_ms": latency_std,
        "rtf": latency / 1e3 / duration,
        "train_step_s": step,
        "sample_rate": int(model.sample_rate),
        "duration": float(duration),
        "batch_size": int(batch_size),
        "device": str(device),
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "memory_method": method,
    }


# ---- reports ---------------------------------------------------------------------------------------------
def _fmt(value, spec: str, none: str = "-") -> str:
    return none if value is None else format(value, spec)


def format_result(r: dict) -> str:
    """Readable two-column table of one `measure` result."""
    setting = (f"{r['model']}: {r['sample_rate']} Hz, {r['duration']:g} s, batch {r['batch_size']}, {r['device']}"
               + (f", {r['threads']} threads" if r.get("threads") else ""))
    rows = [
        ("params (separator)", f"{r['params']:,} ({r['params'] / 1e6:.3f} M)"),
        ("params (cue encoders)", f"{r['params_frontend']:,} ({r['params_frontend'] / 1e6:.3f} M)"),
        ("MACs (separator)", f"{r['macs']:.3f} G for {r['duration']:g} s = {r['macs_per_second']:.3f} G/s of audio"),
        ("MACs (cue encoders)", f"{r['macs_frontend']:.3f} G"),
        ("checkpoint size", f"{r['size_mb']:.2f} MB"),
        ("peak memory (forward)", _fmt(r["peak_memory_mb"], ".1f", "not measured")
         + (f" MB  [{r['memory_method']}]" if r["peak_memory_mb"] is not None else "")),
        ("latency (forward)", f"{r['latency_ms']:.1f} ± {r['latency_std_ms']:.1f} ms"),
        ("real-time factor", f"{r['rtf']:.4f}"),
        ("training step", _fmt(r["train_step_s"], ".3f", "not measured") + (" s" if r["train_step_s"] else "")),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join([setting] + [f"  {k:<{width}}  {v}" for k, v in rows])


def markdown_table(results: list[dict]) -> str:
    """One Markdown table row per `measure` result (MB = 2**20 bytes)."""
    head = ("| model | rate | params (M) | cue-encoder params (M) | MACs (G) | GMACs/s | cue-encoder MACs (G) | size (MB) "
            "| peak mem (MB) | latency (ms) | RTF | train step (s) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['sample_rate'] // 1000} kHz | {r['params'] / 1e6:.3f} | {r['params_frontend'] / 1e6:.3f} "
            f"| {r['macs']:.3f} | {r['macs_per_second']:.3f} | {r['macs_frontend']:.3f} | {r['size_mb']:.2f} "
            f"| {_fmt(r['peak_memory_mb'], '.1f')} | {r['latency_ms']:.1f} ± {r['latency_std_ms']:.1f} | {r['rtf']:.4f} "
            f"| {_fmt(r['train_step_s'], '.3f')} |")
    return "\n".join(lines)


# ---- the measure_efficiency.py entry point ---------------------------------------------------------------
USAGE = ("usage: python measure_efficiency.py model=NAME|all [duration=2.0] [device=cpu|cuda] [batch_size=1] "
         "[save_json=FILE] [repeats=10] [warmup=2] [train_step=true]")


def register_all_models_option(group: str = "model") -> None:
    """Make `model=all` a valid choice of the Hydra `model` group (in this process only, via the ConfigStore)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group=group, name=ALL_MODELS, node={"_measure_all_": True})


def model_config(name: str, config_dir) -> dict:
    """configs/model/<name>.yaml composed by Hydra (defaults lists honoured), as a plain dict."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    if GlobalHydra.instance().is_initialized():
        cfg = compose(config_name=f"model/{name}")
    else:
        with initialize_config_dir(config_dir=str(Path(config_dir).resolve().parent), version_base="1.3"):
            cfg = compose(config_name=f"model/{name}")
    return OmegaConf.to_container(cfg.model, resolve=True)


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _settings(cfg) -> dict | None:
    try:
        s = {"duration": float(cfg.get("duration", 2.0)), "device": str(cfg.get("device", "cpu")),
             "batch_size": int(cfg.get("batch_size", 1)), "repeats": int(cfg.get("repeats", 10)),
             "warmup": int(cfg.get("warmup", 2)), "train_step": bool(cfg.get("train_step", True)),
             "train_repeats": int(cfg.get("train_repeats", 3)), "peak_memory": bool(cfg.get("peak_memory", True))}
    except (TypeError, ValueError) as error:
        _err(f"measure_efficiency: bad setting ({error}); {USAGE}")
        return None
    problems = [f"{k}={s[k]} must be > 0" for k in ("duration", "batch_size", "repeats", "train_repeats")
                if not s[k] > 0 or (k == "duration" and not math.isfinite(s[k]))]
    problems += [f"warmup={s['warmup']} must be >= 0"] if s["warmup"] < 0 else []
    if s["device"].split(":")[0] not in ("cpu", "cuda"):
        problems.append(f"device={s['device']} must be cpu or cuda")
    elif s["device"].startswith("cuda") and not torch.cuda.is_available():
        problems.append("device=cuda but CUDA is not available here")
    if problems:
        _err(f"measure_efficiency: {'; '.join(problems)}")
        return None
    return s


def _write(path: Path, text: str) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return True
    except OSError as error:
        _err(f"{path}: cannot write ({error.strerror or error})")
        return False


def run(cfg, model_name: str | None = None, config_dir=None) -> int:
    """Measure `cfg.model` (or every config in `config_dir` for model=all), print, save; return the exit code."""
    from avss.models.base import build_from_config
    from omegaconf import OmegaConf

    settings = _settings(cfg)
    if settings is None:
        return 2
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True) if cfg.get("model") is not None else None
    save_json = cfg.get("save_json")
    if not model_cfg:
        _err(f"measure_efficiency: no model given ({USAGE})")
        return 2
    measure_all = bool(model_cfg.get("_measure_all_"))
    if measure_all:
        if config_dir is None or not Path(config_dir).is_dir():
            _err(f"measure_efficiency: model=all needs the model config folder (got {config_dir})")
            return 2
        names = sorted(p.stem for p in Path(config_dir).glob("*.yaml"))
        only = cfg.get("only")
        if only:
            unknown = sorted(set(only) - set(names))
            if unknown:
                _err(f"measure_efficiency: only={list(only)} names unknown model configs {unknown}")
                return 2
            names = [n for n in names if n in set(only)]
        jobs = [(n, None) for n in names]
    else:
        jobs = [(model_name or model_cfg["_target_"].rpartition(".")[2], model_cfg)]
    results, failed = [], 0
    for name, config in jobs:
        torch.manual_seed(int(cfg.get("seed", 0)))
        try:
            model = build_from_config(config if config is not None else model_config(name, config_dir))
            result = measure(model, name, **settings)
        except Exception as error:  # one broken config must not stop `model=all`
            if not measure_all:
                raise
            _err(f"{name}: could not be measured ({type(error).__name__}: {error})")
            failed += 1
            continue
        del model
        gc.collect()
        results.append(result)
        if not measure_all:
            print(format_result(result), flush=True)
    if measure_all and results:
        table = markdown_table(results)
        print(table, flush=True)
    if save_json:
        path = Path(save_json)
        payload = results if measure_all else results[0]
        ok = _write(path, json.dumps(payload, indent=2) + "\n")
        if measure_all and results:
            md = path.with_suffix(".md")
            note = (f"\nMACs and params exclude the cue encoders (lip frontend, speaker encoder; shown apart). {results[0]['duration']:g} s of audio, "
                    f"batch {results[0]['batch_size']}, {results[0]['device']}; MB = 2**20 bytes; peak memory: "
                    f"{results[0]['memory_method']}.\n")
            ok = _write(md, table + "\n" + note) and ok
            if ok:
                print(f"wrote {path} and {md}", flush=True)
        elif ok:
            print(f"wrote {path}", flush=True)
        if not ok:
            return 1
    return 1 if failed else 0


def _main(argv: list[str]) -> int:
    if len(argv) == 5 and argv[0] == "peak-memory":
        checkpoint, duration, batch_size, threads = argv[1], float(argv[2]), int(argv[3]), int(argv[4])
        print(json.dumps(_child_peak_memory(checkpoint, duration, batch_size, threads)), flush=True)
        return 0
    _err("usage: python -m avss.utils.benchmark peak-memory CHECKPOINT DURATION BATCH_SIZE THREADS")
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
