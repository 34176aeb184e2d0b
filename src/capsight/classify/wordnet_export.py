"""Derive the small WordNet file the offline zero-shot engine ships with (a developer tool).

    $ apt-get download wordnet-base && dpkg-deb -x wordnet-base_*.deb /tmp/wn
    $ python -m capsight.classify.wordnet_export --wordnet /tmp/wn/usr/share/wordnet \\
          --out src/capsight/data/zero_shot/imagenet_wordnet.tsv.gz

ImageNet's 1,000 classes are WordNet 3.0 noun synsets (``data/imagenet_wnids.txt``). The file
keeps every synset that is an ImageNet class, an ancestor of one ("dog", "vehicle", "fruit") or
a descendant of one ("tabby" under "tabby cat"), one line each::

    wnid <TAB> ImageNet indices under it <TAB> lemma:sense_rank|... <TAB> gloss

and, for nouns outside that hierarchy ("deer", "physician"), the nearest ancestor inside it
within three hops, if it is specific (covers at most 150 classes)::

    wnid <TAB> @ancestor_wnid:hops <TAB> lemma:sense_rank|... <TAB>

``sense_rank`` is the lemma's WordNet sense number by corpus frequency (1 = most frequent), so the engine
can prefer "mouse" the rodent over "mouse" the device when both would match. Nothing here runs
at classification time; the engine only reads the TSV. WordNet 3.0 is (c) Princeton University
under a BSD-style licence that allows redistribution with its notice (kept in the file header).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

HEADER = (
    "# Derived from WordNet 3.0 (c) 2006 Princeton University, distributed under the WordNet "
    "licence: https://wordnet.princeton.edu/license-and-commercial-use\n"
    "# wnid\timagenet_indices\tlemma:sense_rank|...\tgloss\n"
)


def read_noun_synsets(wordnet_dir: Path) -> tuple[dict, dict[str, list[str]]]:
    """Parse data.noun -> {wnid: (lemmas, gloss)} and hypernym edges {wnid: [parent wnids]}."""
    synsets: dict[str, tuple[list[str], str]] = {}
    parents: dict[str, list[str]] = defaultdict(list)
    for line in (wordnet_dir / "data.noun").read_text("latin-1").splitlines():
        if line.startswith(" "):
            continue
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        wnid = "n" + fields[0]
        n_words = int(fields[3], 16)
        lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
        pos = 4 + 2 * n_words
        n_ptrs = int(fields[pos])
        for k in range(n_ptrs):
            symbol, offset, ptr_pos = fields[pos + 1 + 4 * k : pos + 4 + 4 * k]
            if symbol in ("@", "@i") and ptr_pos == "n":
                parents[wnid].append("n" + offset)
        synsets[wnid] = ([lemma.split("(")[0] for lemma in lemmas], gloss.strip())
    return synsets, parents


def read_sense_ranks(wordnet_dir: Path) -> dict[tuple[str, str], int]:
    """index.noun -> {(lemma lowercased, wnid): sense rank}.

    Only the first ``tagsense_cnt`` senses are ordered by corpus frequency; the rest are in no
    particular order, so they share the rank after the last tagged sense.
    """
    ranks = {}
    for line in (wordnet_dir / "index.noun").read_text("latin-1").splitlines():
        if line.startswith(" "):
            continue
        fields = line.split()
        lemma, n_synsets = fields[0].replace("_", " "), int(fields[2])
        tagged = int(fields[-n_synsets - 1])
        for rank, offset in enumerate(fields[-n_synsets:], start=1):
            ranks[(lemma, "n" + offset)] = min(rank, tagged + 1)
    return ranks


def export(wordnet_dir: Path, wnids: list[str]) -> str:
    synsets, parents = read_noun_synsets(wordnet_dir)
    ranks = read_sense_ranks(wordnet_dir)
    children: dict[str, list[str]] = defaultdict(list)
    for child, ps in parents.items():
        for p in ps:
            children[p].append(child)

    under: dict[str, set[int]] = defaultdict(set)  # synset -> ImageNet indices it covers
    for index, wnid in enumerate(wnids):
        stack, seen = [wnid], set()
        while stack:  # the class and all its ancestors cover it
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                under[node].add(index)
                stack.extend(parents.get(node, []))
        stack = list(children.get(wnid, []))
        while stack:  # a hyponym of a class ("tabby") also points at that class
            node = stack.pop()
            if index not in under[node]:
                under[node].add(index)
                stack.extend(children.get(node, []))

    def tagged(wnid: str) -> str:
        return "|".join(f"{x}:{ranks.get((x.lower(), wnid), 99)}" for x in synsets[wnid][0])

    lines = [HEADER]
    for wnid in sorted(under):
        indices = ",".join(str(i) for i in sorted(under[wnid]))
        gloss = synsets[wnid][1].replace("\t", " ")
        lines.append(f"{wnid}\t{indices}\t{tagged(wnid)}\t{gloss}\n")
    for wnid, (ancestor, hops) in sorted(_near_ancestors(synsets, parents, under).items()):
        lines.append(f"{wnid}\t@{ancestor}:{hops}\t{tagged(wnid)}\t\n")
    return "".join(lines)


def _near_ancestors(synsets, parents, under, max_hops: int = 3, max_cover: int = 150) -> dict:
    """Synsets outside ImageNet's hierarchy ("deer") -> (nearest ancestor inside it, hops),
    when that ancestor is specific enough to mean something ("ruminant", not "organism")."""
    near = {}
    for wnid in synsets:
        if wnid in under:
            continue
        frontier, seen = [wnid], {wnid}
        for hops in range(1, max_hops + 1):
            frontier = [p for node in frontier for p in parents.get(node, []) if p not in seen]
            seen.update(frontier)
            hits = [p for p in frontier if p in under]
            if hits:
                best = min(hits, key=lambda p: len(under[p]))
                if len(under[best]) <= max_cover:
                    near[wnid] = (best, hops)
                break
    return near


if __name__ == "__main__":  # the tool itself lives in capsight._cli.tools.wordnet_export
    from capsight._cli.tools.wordnet_export import main

    raise SystemExit(main())
