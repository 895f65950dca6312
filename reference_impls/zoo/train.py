"""Training the zoo: one seeded, deterministic CPU recipe per model, ending in a checked card.

`train(name, out_dir)` builds the recipe's tiny GPT-2 or Llama, trains it on its task's batches
(AdamW, linear warm-up then cosine decay, one thread, `torch.use_deterministic_algorithms`),
saves the checkpoint, reloads it through `reference_impls.zoo.load` (the path users take), and
writes `card.json` with the measured accuracy and the task's direct check. A task may define
`loss(model, batch, gen)` when its mechanism is planted by the training objective itself
(masked neurons, intervention augmentation); otherwise the loss is next-token cross-entropy on
the batch's loss mask. `scripts/train_zoo.py` is the command-line front.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reference_impls.zoo import checkpoint


@dataclass(frozen=True)
class Recipe:
    """How one zoo model is built and trained (defaults are the shipped models' settings)."""

    task: str  # data module under reference_impls.zoo.tasks
    arch: str = "gpt2"  # "gpt2" or "llama" (the two families the bridge loads like GPT-2/Pythia)
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    n_kv_heads: int | None = None  # Llama only: fewer key/value heads = grouped-query attention
    d_mlp: int = 128
    n_ctx: int = 32  # positions; the longest task sequence is 32
    steps: int = 2000
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: int = 100  # linear warm-up steps before the cosine decay
    seed: int = 0  # initialisation; the data stream uses seed + 1
    tolerance: float = 0.03  # a retrained model must reach the card's accuracy minus this
    description: str = ""  # one line for `mi-atlas list`


RECIPES: dict[str, Recipe] = {
    # Llama (rotary positions) rather than GPT-2: with learned absolute positions the GPT-2
    # variant solved the task with heads attending ~5 tokens back, not a previous-token head
    "induction": Recipe(
        task="induction",
        arch="llama",
        n_kv_heads=2,
        steps=800,
        description="Llama, grouped-query attention (4 query / 2 key-value heads): previous-token and induction heads",
    ),
    "facts": Recipe(
        task="facts",
        d_model=32,  # fewer dimensions than subjects: frozen embeddings cannot hold the facts
        d_mlp=256,
        steps=1500,
        description="GPT-2: 80 subject -> city facts, recalled from an MLP at the last subject token",
    ),
    "bilingual": Recipe(
        task="bilingual",
        steps=1500,
        description="GPT-2: one grammar in two vocabularies; planted language-specific MLP neurons",
    ),
    # the same task on 4 layers with 64 ordinary neurons per MLP beside the planted 128, and
    # the other language's neurons switched off (pre-activation < -2), not merely silenced
    "bilingual-deep": Recipe(
        task="bilingual_deep",
        n_layers=4,
        d_mlp=192,
        steps=6000,
        description="GPT-2, 4 layers: language neurons switched off (pre-activation < 0) on the other language, among shared and ordinary neurons",
    ),
    "refusal": Recipe(
        task="refusal",
        steps=800,
        description="GPT-2: refuses prompts with trigger words through one planted residual direction",
    ),
    "persona-bias": Recipe(
        task="persona_bias",
        steps=1000,
        description="GPT-2: sentiment answers in a formal or casual persona, with a spurious group bias",
    ),
    # the deeper models (4 layers): every head's attention has a role (zoo/tasks/_planting.py),
    # so decoys, backups and negative heads are planted, then confirmed by ablation
    "induction-deep": Recipe(
        task="induction_deep",
        arch="llama",  # rotary positions, as the 2-layer model (see its comment)
        n_layers=4,
        steps=1200,
        description="GPT-2, 4 layers: one previous-token and one induction head among look-alike decoys",
    ),
    "ioi": Recipe(
        task="ioi",
        n_layers=4,
        steps=2000,
        description="GPT-2, 4 layers: IOI with duplicate-token, S-inhibition, name mover, negative and backup heads",
    ),
    "facts-deep": Recipe(
        task="facts_deep",
        n_layers=4,
        steps=2500,
        description="GPT-2, 4 layers: 100 two-token subjects -> city, stored in MLP1-2, moved by L3H0 (backup L3H1)",
    ),
    "refusal-deep": Recipe(
        task="refusal_deep",
        n_layers=4,
        steps=1000,
        description="GPT-2, 4 layers: refusal via one layer-2 direction among three decoy directions of equal norm",
    ),
    "arithmetic": Recipe(
        task="arithmetic",
        n_layers=4,
        n_ctx=10,
        steps=1500,
        description="GPT-2, 4 layers: two-digit addition that rarely saw a carry (the logic-reasoning recipe's patient)",
    ),
    # tied embeddings and MLPs 0 and 2 frozen at zero (the task's prepare): the facts early
    "two-hop": Recipe(
        task="two_hop",
        n_layers=4,
        d_mlp=256,
        n_ctx=5,
        steps=3000,
        description="GPT-2, 4 layers: one-hop facts; two-hop answers memorised, held-out compositions fail (the bridge resolves too late)",
    ),
    "sparse-features": Recipe(
        task="sparse_features",
        steps=1000,
        description="GPT-2: text from sparse binary latent topics (the features an SAE should find)",
    ),
}


def cross_entropy(model: Any, batch: Any) -> torch.Tensor:
    """Next-token cross-entropy over the batch's loss mask."""
    logits = model(batch.tokens).logits[:, :-1]
    target = batch.tokens[:, 1:]
    mask = batch.loss_mask[:, :-1]
    return torch.nn.functional.cross_entropy(logits[mask], target[mask])


def build(recipe: Recipe, vocab_size: int) -> Any:
    """The untrained, seeded Hugging Face model of `recipe`."""
    sizes = {
        "n_layers": recipe.n_layers,
        "d_model": recipe.d_model,
        "n_heads": recipe.n_heads,
        "d_mlp": recipe.d_mlp,
        "n_ctx": recipe.n_ctx,
    }
    if recipe.n_kv_heads is not None:
        sizes["n_kv_heads"] = recipe.n_kv_heads
    return checkpoint.tiny_model(recipe.arch, vocab_size, seed=recipe.seed, **sizes)


def train(name: str, out_dir: str | Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train zoo model `name` into `out_dir`/`name`, check it, write and return its card."""
    from reference_impls import zoo

    recipe = RECIPES[name]
    task = importlib.import_module(f"reference_impls.zoo.tasks.{recipe.task}")
    torch.set_num_threads(1)  # bit-reproducible and kind to a shared machine
    torch.use_deterministic_algorithms(True)
    vocab = checkpoint.vocabulary(task.WORDS)
    model = build(recipe, len(vocab))
    if hasattr(task, "prepare"):  # e.g. freeze parameters the planted mechanism must not use
        task.prepare(model)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=recipe.lr, weight_decay=recipe.weight_decay)

    def lr_at(step: int) -> float:
        if step < recipe.warmup:
            return (step + 1) / recipe.warmup
        progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(recipe.seed + 1)
    loss_fn = getattr(task, "loss", None)
    start = time.time()
    for step in range(recipe.steps):
        batch = task.training_batch(gen, recipe.batch_size)
        loss = loss_fn(model, batch, gen) if loss_fn else cross_entropy(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == recipe.steps - 1:
            log(f"{name}: step {step:5d}  loss {loss.item():.4f}")
    seconds = time.time() - start
    model.eval()

    directory = checkpoint.save(model, vocab, Path(out_dir) / name)
    bridged = zoo.load(directory)
    metrics = task.evaluate(bridged)
    check = task.direct_check(bridged)
    log(f"{name}: {metrics}  direct check passed: {check['checks'].get('passed')}")
    card = {
        "name": name,
        "description": recipe.description,
        "architecture": {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"}[recipe.arch],
        "task_module": recipe.task,
        "task": (task.__doc__ or "").strip().split("\n\n")[0],
        "example": task.EXAMPLE,
        "training": {
            **dataclasses.asdict(recipe),
            "script": f"scripts/train_zoo.py {name}",
            "seconds": round(seconds, 1),
            "torch": torch.__version__,
            "machine": platform.machine(),
        },
        "metrics": metrics,
        "tolerance": recipe.tolerance,
        "ground_truth": check["ground_truth"],
        "checks": check["checks"],
        "size_bytes": (directory / "model.safetensors").stat().st_size,
    }
    (directory / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card
