"""Every locate method on tiny random checkpoints of ten architectures, and parity with nnsight.

Each checkpoint is built here (configs in code, random weights, the zoo's WordLevel tokenizer),
saved as a Hugging Face folder and loaded the way a user's is (`loading.load_model`). Checks:
every locate method runs from a task file and scores every site with a finite number; cutting
every edge into the unembedding reproduces the corrupted run (circuit discovery's graph is right
on that architecture); head-output and residual-stream activation patching equal nnsight's, one
trace per site on the Hugging Face model itself, to 1e-5. GPT-2 and Qwen3 run by default, the
rest with the slow tests (about 10 s each on one CPU thread).
"""

from __future__ import annotations

import pytest
import torch
import transformers

from mi_atlas import tasks
from reference_impls import addressing as A
from reference_impls import loading
from reference_impls.locate import circuit_discovery as CD
from reference_impls.locate.causal_attribution import activation_patching
from reference_impls.locate.metrics import LogitDiff
from reference_impls.task_methods import LOCATE, run_task
from reference_impls.task_run import prepare
from reference_impls.zoo import checkpoint

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]

VOCAB = checkpoint.vocabulary([f"w{i}" for i in range(13)])
SIZES = dict(
    vocab_size=len(VOCAB), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
    num_attention_heads=4, max_position_embeddings=32, bos_token_id=1, eos_token_id=1,
    pad_token_id=0, tie_word_embeddings=False,
)  # fmt: skip
GQA = dict(SIZES, num_key_value_heads=2)


def _gpt2():
    config = transformers.GPT2Config(
        vocab_size=len(VOCAB), n_positions=32, n_embd=32, n_layer=2, n_head=4, n_inner=48,
        bos_token_id=1, eos_token_id=1, pad_token_id=0,
    )  # fmt: skip
    return transformers.GPT2LMHeadModel(config)


ARCHITECTURES = {
    "gpt2": _gpt2,
    "gpt-neox": lambda: transformers.GPTNeoXForCausalLM(transformers.GPTNeoXConfig(**SIZES)),
    "llama": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(**GQA)),
    "mistral": lambda: transformers.MistralForCausalLM(transformers.MistralConfig(**GQA)),
    "qwen2": lambda: transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**GQA)),
    "qwen3": lambda: transformers.Qwen3ForCausalLM(transformers.Qwen3Config(**GQA, head_dim=8)),
    "gemma2": lambda: transformers.Gemma2ForCausalLM(transformers.Gemma2Config(**GQA, head_dim=8)),
    "gemma3": lambda: transformers.Gemma3ForCausalLM(
        transformers.Gemma3TextConfig(**GQA, head_dim=8)
    ),
    "phi3": lambda: transformers.Phi3ForCausalLM(transformers.Phi3Config(**GQA)),
    "olmo2": lambda: transformers.Olmo2ForCausalLM(transformers.Olmo2Config(**GQA)),
}
FAST = ("gpt2", "qwen3")
# post-norm blocks: each attention and MLP output is normalised before it joins the stream
POST_NORM = ("gemma2", "gemma3", "olmo2")

TASK = """\
prompts:
  - {clean_ids: [1, 5, 9, 4, 5], corrupted_ids: [1, 7, 9, 4, 5], answer_id: 9, counterfactual_id: 4}
  - {clean_ids: [1, 6, 11, 3, 6], corrupted_ids: [1, 12, 11, 3, 6], answer_id: 11, counterfactual_id: 3}
  - {clean_ids: [1, 8, 10, 13, 8], corrupted_ids: [1, 14, 10, 13, 8], answer_id: 10, counterfactual_id: 13}
  - {clean_ids: [1, 15, 3, 7, 15], corrupted_ids: [1, 4, 3, 7, 15], answer_id: 3, counterfactual_id: 7}
metric: logit-diff
"""


@pytest.fixture(scope="module")
def task_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("task") / "pairs.yaml"
    path.write_text(TASK, encoding="utf-8")
    return path


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(name, marks=() if name in FAST else pytest.mark.slow) for name in ARCHITECTURES
    ],
)
def arch(request, tmp_path_factory):
    """(architecture name, its checkpoint folder)."""
    torch.manual_seed(0)
    hf = ARCHITECTURES[request.param]()
    return request.param, checkpoint.save(hf, VOCAB, tmp_path_factory.mktemp(request.param))


def test_every_locate_method_runs_from_a_task_file(arch, task_file):
    name, checkpoint_dir = arch
    for method in LOCATE:
        if name in POST_NORM and method == "circuit-discovery":
            with pytest.raises(CD.GraphError, match="post-norms"):
                run_task(method, str(checkpoint_dir), task_file)
            continue
        doc = run_task(method, str(checkpoint_dir), task_file)
        assert doc.model.source == "hf-dir"
        labels = [s.target.label for s in doc.result.scores]
        assert len(labels) == len(set(labels)) > 0, method
        assert all(torch.isfinite(torch.tensor(s.score.mean)) for s in doc.result.scores), method
        if method == "circuit-discovery":  # EAP-IG, EAP and ACDC, each with its faithfulness
            for result in (doc.result, *doc.result.variants):
                curve = result.faithfulness
                assert curve.sizes[0] == 0 and curve.sizes[-1] == len(labels)
                assert curve.faithfulness[0].mean == pytest.approx(0, abs=1e-3)
                assert curve.faithfulness[-1].mean == pytest.approx(1, abs=1e-3)


def test_cutting_every_edge_into_the_unembedding_is_the_corrupted_run(arch, task_file):
    name, checkpoint_dir = arch
    model, _ = loading.load_model(str(checkpoint_dir))
    if name in POST_NORM:  # no separable edges: the graph refuses, naming the architecture
        with pytest.raises(CD.GraphError, match=ARCHITECTURES[name]().__class__.__name__):
            CD.graph(model)
        return
    batch = prepare(tasks.load(task_file), model)
    metric = batch.metric(model)
    g = CD.graph(model)
    everything = g.incoming(A.resid(model.cfg.n_layers - 1, where="post"))
    values, unpatched = CD.edge_patching(model, batch.clean, batch.corrupted, [everything], metric)
    with torch.no_grad():
        assert values.mean().item() == pytest.approx(
            metric(model(batch.corrupted)).mean().item(), abs=1e-4
        )
        assert unpatched.mean().item() == pytest.approx(
            metric(model(batch.clean)).mean().item(), abs=1e-4
        )


# ---- parity with nnsight ----------------------------------------------------------------------


def _path(root, *candidates):
    for candidate in candidates:
        node = root
        try:
            for part in candidate.split("."):
                node = getattr(node, part)
            return node
        except AttributeError:
            continue
    raise AttributeError(f"none of {candidates} on {type(root).__name__}")


def nnsight_patching(hf, clean, corrupted, answer, wrong, kind, d_head):
    """Denoising patching, one nnsight trace per site: logit(answer) - logit(wrong), last position."""
    from nnsight import NNsight

    model = NNsight(hf)
    layers = _path(model, "model.layers", "transformer.h", "gpt_neox.layers")
    n_layers, n_pos = len(layers), clean.shape[1]

    def project(layer):
        return _path(layers[layer], "self_attn.o_proj", "attn.c_proj", "attention.dense")

    def metric(logits):
        last = logits[:, -1]
        return (last.gather(1, answer[:, None]) - last.gather(1, wrong[:, None])).mean()

    saved = []  # filled inside the trace (nnsight runs its body in the model's forward)
    with torch.no_grad():
        with model.trace(clean):
            for layer in range(n_layers):  # in execution order, as nnsight requires
                saved.append(layers[layer].input.save())
                saved.append(project(layer).input.save())
        values = []
        for layer in range(n_layers):
            resid, heads = saved[2 * layer], saved[2 * layer + 1]
            n_heads = heads.shape[-1] // d_head
            targets = (
                [(None, p) for p in range(n_pos)]
                if kind == "resid"
                else [(h, p) for h in range(n_heads) for p in range(n_pos)]
            )
            for h, p in targets:
                with model.trace(corrupted):
                    if h is None:
                        layers[layer].input[:, p] = resid[:, p]
                    else:
                        sl = slice(h * d_head, (h + 1) * d_head)
                        project(layer).input[:, p, sl] = heads[:, p, sl]
                    logits = model.output.logits.save()
                values.append(float(metric(logits)))
    return torch.tensor(values)


@pytest.mark.parametrize("kind", ["heads", "resid"])
def test_patching_equals_nnsight_tracing_on_the_hf_model(arch, task_file, kind):
    _, checkpoint_dir = arch
    model, _ = loading.load_model(str(checkpoint_dir))
    batch = prepare(tasks.load(task_file), model)
    metric = LogitDiff(batch.answer, batch.counterfactual)
    n_pos = batch.n_pos
    # layer, head, position (row-major), as nnsight_patching enumerates them
    sites = (
        A.heads(model, "out", positions=n_pos)
        if kind == "heads"
        else A.layers(model, "resid_pre", positions=n_pos)
    )
    ours = activation_patching(model, batch.clean, batch.corrupted, sites, metric).values
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        checkpoint_dir, attn_implementation="eager"
    ).eval()
    theirs = nnsight_patching(
        hf, batch.clean, batch.corrupted, batch.answer, batch.counterfactual, kind,
        model.cfg.d_head,
    )  # fmt: skip
    assert (theirs - theirs[0]).abs().max() > 1e-3  # the sites differ: the check can fail
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    assert ours.argmax() == theirs.argmax()


def test_an_architecture_the_bridge_cannot_wrap_says_so(tmp_path):
    config = transformers.BioGptConfig(
        vocab_size=len(VOCAB), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=32,
    )  # fmt: skip
    directory = checkpoint.save(transformers.BioGptForCausalLM(config), VOCAB, tmp_path / "bio")
    with pytest.raises(loading.LoadError) as err:
        loading.load_model(str(directory))
    assert str(err.value) == (
        f"TransformerLens' bridge cannot wrap BioGptForCausalLM ({directory}): it is not among "
        "the architectures TransformerBridge supports (docs/own-model.md lists what runs here)"
    )
