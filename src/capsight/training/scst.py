"""Self-critical sequence training (Rennie et al. 2017): the sentence's CIDEr-D is the reward.

    >>> loss, mean_reward = scst_loss(model, grid, references, vocab, cider, samples=5)
    >>> loss.backward()

For each image the model samples ``samples`` captions; each caption's advantage is its CIDEr-D
minus the mean CIDEr-D of the image's other samples (the leave-one-out baseline of the "new
SCST" variant, which needs no extra greedy pass), and the loss is the advantage-weighted
negative log-likelihood of the sampled words. Sampled repeated trigrams are not banned: the
reward already punishes them.
"""

from __future__ import annotations

import torch

from capsight.captioning.model import CaptionModel, expand_state
from capsight.captioning.vocabulary import Vocabulary
from capsight.training.cider import CiderD


def sample_with_log_probs(
    model: CaptionModel,
    grid: torch.Tensor,
    samples: int,
    max_length: int,
    generator: torch.Generator,
    top_k: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample ``samples`` captions per image, keeping the graph.

    ``top_k > 0`` samples from the k most likely words only (renormalised, and the gradient is
    that of the renormalised policy): a model trained with label smoothing spreads ~10% of its
    mass over the whole vocabulary, and full sampling then mostly teaches it to drop that tail.

    Returns ids (B*samples, L), their log-probs (B*samples, L) and a mask of real tokens
    (words and the closing <eos>), rows of one image adjacent.
    """
    state = expand_state(model.start(grid), samples)
    n = grid.shape[0] * samples
    tokens = torch.full((n,), model.bos_id, dtype=torch.long, device=grid.device)
    done = torch.zeros(n, dtype=torch.bool, device=grid.device)
    ids, logps, masks = [], [], []
    for _ in range(max_length):
        logits, state, _ = model.step(tokens, state)  # (n, V)
        logits = logits.float()
        if top_k > 0:
            kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (n, 1)
            logits = logits.masked_fill(logits < kth, float("-inf"))
        logp = logits.log_softmax(-1)  # (n, V)
        chosen = torch.multinomial(logp.detach().exp(), 1, generator=generator).squeeze(1)  # (n,)
        masks.append(~done)
        ids.append(torch.where(done, torch.full_like(chosen, model.pad_id), chosen))
        logps.append(logp.gather(1, chosen[:, None]).squeeze(1))
        done = done | (chosen == model.eos_id)
        tokens = chosen
        if bool(done.all()):
            break
    return torch.stack(ids, 1), torch.stack(logps, 1), torch.stack(masks, 1).float()


def scst_loss(
    model: CaptionModel,
    grid: torch.Tensor,
    references: list[list[str]],
    vocab: Vocabulary,
    cider: CiderD,
    samples: int = 5,
    max_length: int = 16,
    generator: torch.Generator | None = None,
    top_k: int = 0,
    end_word: str | None = None,
) -> tuple[torch.Tensor, float]:
    """grid (B, P, D), references per image -> (loss, mean sample reward).

    ``end_word`` (e.g. "<eos>", with the references and the scorer's document frequencies built
    from references ending in it too) is appended to each sampled caption before scoring, so
    n-grams that end a sentence count: "the grass <eos>" earns credit, "a wooden <eos>" none.
    """
    generator = generator or torch.Generator(device=grid.device).manual_seed(0)
    ids, logp, mask = sample_with_log_probs(model, grid, samples, max_length, generator, top_k)
    texts = [" ".join(vocab.decode(row)) for row in ids.tolist()]
    if end_word:
        texts = [f"{text} {end_word}" for text in texts]
    refs = [references[i // samples] for i in range(len(texts))]
    rewards = torch.tensor(cider.scores(texts, refs), dtype=torch.float32).reshape(-1, samples)
    baseline = (rewards.sum(dim=1, keepdim=True) - rewards) / max(samples - 1, 1)  # (B, S)
    advantage = (rewards - baseline).reshape(-1, 1).to(logp.device)  # (B*S, 1)
    loss = -(advantage * logp * mask).sum() / mask.sum().clamp(min=1.0)
    return loss, float(rewards.mean())
