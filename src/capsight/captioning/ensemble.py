"""Several trained caption models decoding as one: their word probabilities are averaged.

    >>> model = CaptionEnsemble([sat_a, sat_b])
    >>> decode(model, grid, DecodingOptions(method="beam"))      # any decoding method works

Each step asks every member for its next-word distribution and returns the log of the mean
probability, so beam search ranks sentences by the members' consensus. The members must share
one vocabulary. Attention maps come from the first member that has them.

Members may read different encoders (Lite0's 7x7 grid, Lite2's 9x9): then ``positions`` gives
each member's number of grid positions, and the grid passed in holds their grids side by side
along the position axis, (B, 49 + 81, 1280), which every decoding method handles as one tensor.
Such members may also differ in what they read: one whose encoder's top blocks were fine-tuned
gets the grid its own top blocks make of the hidden map (``member_grid``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from capsight.captioning.model import CaptionModel, State
from capsight.errors import ModelNotFound


class CaptionEnsemble(CaptionModel):
    def __init__(self, members: list[CaptionModel], positions: list[int] | None = None) -> None:
        super().__init__()
        if not members:
            raise ModelNotFound("an ensemble needs at least one trained model")
        if positions is not None and len(positions) != len(members):
            raise ModelNotFound("an ensemble needs one grid size per member")
        self.members = nn.ModuleList(members)
        self.positions = positions
        self.config = members[0].config
        self.has_attention = any(m.has_attention for m in members)
        first = members[0]
        if positions is None and len({m.feature_input for m in members}) > 1:
            raise ModelNotFound(
                "ensemble members must read the same encoder output: some fine-tuned the "
                "encoder's top blocks, some did not"
            )
        # With positions, each member reads its own grid; one that fine-tuned its encoder's top
        # blocks gets the grid its own top made of the hidden map (``member_grid``).
        self.feature_input = first.feature_input if positions is None else "grid"
        self.bos_id, self.eos_id, self.pad_id = first.bos_id, first.eos_id, first.pad_id
        self.unk_id, self.endings = first.unk_id, first.endings
        self.function_ids = getattr(first, "function_ids", None)  # one shared vocabulary
        self.not_first_ids = getattr(first, "not_first_ids", None)
        self.static_state_keys = tuple(
            f"{i}.{k}" for i, m in enumerate(members) for k in m.static_state_keys
        )

    def start(self, grid: torch.Tensor) -> State:
        grids = [grid] * len(self.members)
        if self.positions is not None:  # each member's own grid, side by side
            if grid.shape[1] != sum(self.positions):
                raise ValueError(
                    f"grid has {grid.shape[1]} positions; the members read {self.positions}"
                )
            grids = list(grid.split(self.positions, dim=1))
        state: State = {}
        for i, (member, own) in enumerate(zip(self.members, grids, strict=True)):
            state.update({f"{i}.{k}": v for k, v in member.start(own).items()})
        return state

    def longest_caption(self, grid: torch.Tensor) -> int | None:
        grids = (
            list(grid.split(self.positions, dim=1))
            if self.positions is not None
            else [grid] * len(self.members)
        )
        limits = [m.longest_caption(g) for m, g in zip(self.members, grids, strict=True)]
        return min((n for n in limits if n is not None), default=None)

    def step(self, tokens: torch.Tensor, state: State):
        new_state: State = {}
        log_probs, attention = [], None
        for i, member in enumerate(self.members):
            prefix = f"{i}."
            own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            logits, own, alpha = member.step(tokens, own)  # (B, V)
            log_probs.append(logits.float().log_softmax(-1))
            if attention is None and alpha is not None:
                attention = alpha
            new_state.update({prefix + k: v for k, v in own.items()})
        mean = torch.logsumexp(torch.stack(log_probs), dim=0) - math.log(len(log_probs))  # (B, V)
        return mean, new_state, attention

    @staticmethod
    def member_grid(
        member: CaptionModel, grid: torch.Tensor, hidden: torch.Tensor | None
    ) -> torch.Tensor:
        """What ``member`` reads of one encoder's output in an ensemble with ``positions``: the
        grid (B, P, 1280), or for a member with fine-tuned top blocks its own top's grid of the
        hidden map."""
        if member.feature_input != "hidden":
            return grid
        if hidden is None:
            raise ModelNotFound(
                "an ensemble member with fine-tuned encoder blocks needs the encoder's hidden maps"
            )
        return member.encoder_top(hidden)

    def forward(self, grid: torch.Tensor, captions: torch.Tensor):
        raise NotImplementedError("train the members one by one; the ensemble only decodes")
