"""YAML parsing with limits, for files that are read where a slow parse hurts everyone.

Model files are parsed by every DAG file of the project at DAG-parse time (by the
dag-processor, every 30 s, under a time limit for the whole DAG file) and by the CLI. A file
of a few hundred bytes must not be able to take that down. ``yaml.safe_load`` refuses
arbitrary objects but not size: a "billion laughs" (9 anchors, each a list of 9 aliases of
the previous one) composes in milliseconds into a graph whose expansion has 9**9 nodes, and
anything that walks the data afterwards (environment interpolation, validation) runs out of
time and memory. So the limits are checked while the document is *composed*, before any of it
is constructed or expanded, and each costs at most what it bounds:

``MAX_DEPTH``           collections nested deeper than this
``MAX_ALIASES``         aliases (``*name``, merges ``<<: *name`` included) in one document
``MAX_NODES``           nodes of the document *as expanded*: an alias counts every node of what
                        it refers to, so a bomb is refused at the alias that crosses the limit
                        (the expanded size of each anchored node is known once it is composed)

An alias to a node that is still being composed (``&a [*a]``, a recursive structure) is
refused too: nothing downstream expects a cycle. The size of the text is the caller's limit
(driftline.config.MAX_MODEL_FILE_BYTES), checked before parsing.

With libyaml (``yaml.__with_libyaml__``) its C parser produces the events and only the
composition, where the limits live, runs in Python: a 1 MiB file is scanned in milliseconds.
"""
from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.resolver import Resolver

MAX_DEPTH = 50
MAX_ALIASES = 1_000
MAX_NODES = 50_000


class YAMLLimitError(yaml.YAMLError):
    """The document crosses one of the limits; ``problem`` says which, ``problem_mark`` where."""

    def __init__(self, problem: str, mark: Any = None):
        self.problem = problem
        self.problem_mark = mark
        super().__init__(problem)


class _BoundedComposer(Composer):
    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._aliases = 0
        self._nodes = 0
        #: anchor -> number of nodes of the anchored node, expanded; absent while it is composed.
        self._anchor_sizes: dict[str, int] = {}

    def _count(self, n: int, mark: Any) -> None:
        self._nodes += n
        if self._nodes > MAX_NODES:
            raise YAMLLimitError(f"the document expands to more than {MAX_NODES} nodes (the limit of a model file; "
                                 f"aliases count every node they refer to)", mark)

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YAMLLimitError(f"more than {MAX_ALIASES} aliases (the limit of a model file)", event.start_mark)
            if event.anchor in self.anchors:  # an undefined one is left to Composer's own error
                size = self._anchor_sizes.get(event.anchor)
                if size is None:
                    raise YAMLLimitError(f"alias *{event.anchor} refers to a node that contains it (a recursive "
                                         f"structure)", event.start_mark)
                self._count(size, event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YAMLLimitError(f"nested deeper than {MAX_DEPTH} levels (the limit of a model file)",
                                 event.start_mark)
        before = self._nodes
        self._count(1, event.start_mark)
        node = super().compose_node(parent, index)
        self._depth -= 1
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._anchor_sizes[anchor] = self._nodes - before
        return node


class _Constructor(SafeConstructor):
    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # a date like 2026-02-30, an integer of 5000 digits
            raise ConstructorError(None, None, str(exc), node.start_mark) from None


try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML without libyaml: the pure-Python reader, scanner and parser
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(Reader, Scanner, Parser, _BoundedComposer, _Constructor, Resolver):
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            _BoundedComposer.__init__(self)
            _Constructor.__init__(self)
            Resolver.__init__(self)
else:
    class _Loader(_BoundedComposer, CParser, _Constructor, Resolver):  # type: ignore[no-redef]
        # The composer comes before CParser so that its Python compose_* methods, where the
        # limits are, replace libyaml's; CParser supplies the events.
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            _Constructor.__init__(self)
            Resolver.__init__(self)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` within the limits above. Raises YAMLLimitError (a yaml.YAMLError)
    when the document crosses one, and yaml.YAMLError for text that is not YAML."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
