"""Load the model a user names: a zoo model, a Hugging Face folder or hub id, a TL-native folder.

Every method runs on a TransformerLens `TransformerBridge` in compatibility mode. Hugging Face
checkpoints (a local folder or a hub id, and every zoo model) go through
`reference_impls.zoo.load`, i.e. `TransformerBridge.boot_transformers`; with `device_map`
(accelerate) the Hugging Face model is spread over devices before it is bridged. A
TransformerLens-native folder, as InterpBench- and tracr-style models ship, holds a config
(`tl_config.json`, or a `config.json` without a Hugging Face `model_type`: the fields of
`TransformerBridgeConfig`, e.g. d_model, n_layers, n_heads, d_head, d_mlp, n_ctx, d_vocab,
act_fn, normalization_type, attention_dir) and a state dict (`model.safetensors` or a `.pth`
file), either in the bridge's own keys or in HookedTransformer's (`blocks.0.attn.W_Q`, ...,
converted by TransformerLens' `convert_tl_checkpoint`); it is built with `boot_native`.

Example:
    >>> model, ref = load_model("path/to/checkpoint", device="cpu", dtype="float32")
    >>> ref.source, ref.architecture
    ('hf-dir', 'Qwen3ForCausalLM')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mi_atlas import runs
from reference_impls import zoo

DTYPES = ("float32", "bfloat16", "float16")
DEVICES = ("cpu", "cuda", "mps")
NATIVE_CONFIGS = ("tl_config.json", "config.json")


class LoadError(zoo.ZooError):
    """A model that could not be loaded; the message is one sentence naming it and why."""


def source_of(name: str) -> str:
    """'zoo', 'tl-native', 'hf-dir' or 'hub' for a model name or path."""
    if name in zoo.names():
        return "zoo"
    path = Path(name)
    if path.is_dir():
        return "tl-native" if _native_config(path) is not None else "hf-dir"
    return "hub"


def load_model(
    name: str,
    device: str = "cpu",
    dtype: str = "float32",
    device_map: str | dict[str, Any] | None = None,
) -> tuple[Any, runs.ModelRef]:
    """The bridged model and its `runs.ModelRef`; LoadError / zoo errors say what went wrong."""
    import torch

    if dtype not in DTYPES:
        raise LoadError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if device.split(":")[0] not in DEVICES:
        raise LoadError(f"--device {device!r} is not one of {', '.join(DEVICES)}")
    _check_device(device)
    torch_dtype = getattr(torch, dtype)
    source = source_of(name)
    if source == "tl-native":
        model = _load_native(Path(name), device, torch_dtype)
        architecture = "TransformerLensNative"
    else:
        try:
            model = zoo.load(name, device=device, dtype=torch_dtype, device_map=device_map)
        except ValueError as exc:
            if "supported architecture" not in str(exc):
                raise
            raise LoadError(
                f"TransformerLens' bridge cannot wrap {_config_architecture(name)} ({name}): it "
                "is not among the architectures TransformerBridge supports (docs/own-model.md "
                "lists what runs here)"
            ) from None
        architecture = _hf_architecture(model)
    cfg = model.cfg
    ref = runs.ModelRef(
        name=name,
        source=source,
        architecture=architecture,
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        d_model=cfg.d_model,
    )
    return model, ref


def _check_device(device: str) -> None:
    import torch

    kind = device.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise LoadError("--device cuda: no CUDA device is available here; use --device cpu")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise LoadError("--device mps: no Apple MPS device is available here; use --device cpu")


def _config_architecture(name: str) -> str:
    """The architecture a Hugging Face config names (for messages), without loading weights."""
    try:
        from transformers import AutoConfig

        names = AutoConfig.from_pretrained(name, local_files_only=Path(name).is_dir()).architectures
        return names[0] if names else "this architecture"
    except (OSError, ValueError):
        return "this architecture"


def _hf_architecture(model: Any) -> str:
    config = getattr(getattr(model, "original_model", None), "config", None)
    names = getattr(config, "architectures", None) or []
    return names[0] if names else type(getattr(model, "original_model", model)).__name__


def _native_config(path: Path) -> dict[str, Any] | None:
    """The TransformerBridgeConfig fields of a TL-native folder, or None for a HF folder."""
    for file in NATIVE_CONFIGS:
        candidate = path / file
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise LoadError(f"{candidate}: is not readable JSON ({exc})") from None
            if isinstance(data, dict) and "model_type" not in data and "d_model" in data:
                return data
    return None


def _load_native(path: Path, device: str, dtype: Any) -> Any:
    import transformer_lens.model_bridge.sources.native  # noqa: F401 (attaches boot_native)
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    fields = _native_config(path) or {}
    try:
        cfg = TransformerBridgeConfig.from_dict(
            {k: v for k, v in fields.items() if k not in ("dtype", "device")}
        )
    except (TypeError, ValueError) as exc:
        raise LoadError(f"{path}: its config is not a TransformerLens config ({exc})") from None
    state = _native_state_dict(path)
    if "embed.W_E" in state:  # HookedTransformer's property names
        from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

        state = convert_tl_checkpoint(state, cfg)
    tokenizer = None
    if (path / "tokenizer.json").is_file():
        from transformers import PreTrainedTokenizerFast

        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
    bridge = TransformerBridge.boot_native(cfg, tokenizer=tokenizer, model_name=str(path))
    missing = bridge.load_state_dict(state, strict=False)
    if missing.missing_keys or missing.unexpected_keys:
        raise LoadError(
            f"{path}: its state dict does not fit its config (missing: "
            f"{', '.join(missing.missing_keys[:3]) or 'none'}; unexpected: "
            f"{', '.join(missing.unexpected_keys[:3]) or 'none'})"
        )
    bridge = bridge.to(device=device, dtype=dtype)
    bridge.enable_compatibility_mode(disable_warnings=True)
    return bridge.eval()


def _native_state_dict(path: Path) -> dict[str, Any]:
    import torch

    if (path / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(str(path / "model.safetensors"))
    found = sorted(path.glob("*.pth")) + sorted(path.glob("*.pt"))
    if not found:
        raise LoadError(f"{path}: a TL-native folder needs model.safetensors or a .pth state dict")
    return torch.load(found[0], map_location="cpu", weights_only=True)


def save_native(
    bridge: Any, directory: str | Path, tokenizer_dir: str | Path | None = None
) -> Path:
    """Write a TL-native bridge as a folder `load_model` reads: tl_config.json + model.safetensors."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fields = {
        k: v
        for k, v in bridge.cfg.to_dict().items()
        if isinstance(v, int | float | str | bool | list) or v is None
    }
    (directory / "tl_config.json").write_text(json.dumps(fields, indent=1) + "\n", encoding="utf-8")
    state = {k: v.detach().contiguous() for k, v in bridge.state_dict().items()}
    save_file(state, str(directory / "model.safetensors"))
    if tokenizer_dir is not None:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            if (Path(tokenizer_dir) / name).is_file():
                (directory / name).write_bytes((Path(tokenizer_dir) / name).read_bytes())
    return directory


SAFE_SHARE = {"cpu": 0.5, "cuda": 0.8, "mps": 0.5}  # of the memory free when the sweep starts


def memory_budget(max_memory: str | int | None, device: str = "cpu") -> int:
    """Bytes a sweep may use for activations: `max_memory` ("8GB", "512MiB", bytes) or, by
    default, a safe share of what is free on `device` now (psutil for CPU memory)."""
    if max_memory is not None:
        from accelerate.utils import convert_file_size_to_int

        try:
            value = convert_file_size_to_int(max_memory)
        except ValueError:
            raise LoadError(
                f"--max-memory {max_memory!r} is not a size; write e.g. 8GB, 512MiB or a byte count"
            ) from None
        if value <= 0:
            raise LoadError(f"--max-memory {max_memory!r} must be more than 0 bytes")
        return value
    kind = device.split(":")[0]
    if kind == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
    else:
        import psutil

        free = psutil.virtual_memory().available
    return int(free * SAFE_SHARE.get(kind, 0.5))
