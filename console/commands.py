"""The command palette's list of keys (``ctrl+p``): every action bound on the screen in front, its focused
widget and the app, by name with its key, so that a dispatcher who forgot a key can find the action by
what it does ("ack", "map", "history") and run it from the palette too.

The list is read from the screen's active bindings when the palette opens, so a screen added later is
covered without touching this module; an action disabled where the palette was opened is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.binding import ActiveBinding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode
from textual.screen import Screen


@dataclass(frozen=True, slots=True)
class BoundAction:
    """One action as the palette lists it: ``Ack  (a)``."""

    name: str
    keys: str
    help: str
    action: str
    node: DOMNode

    @property
    def text(self) -> str:
        return f"{self.name}  ({self.keys})"


def _help(node: DOMNode, action: str, tooltip: str) -> str:
    """The binding's tooltip, else the first line of the action method's docstring, else nothing."""
    if tooltip:
        return tooltip
    name = action.split("(", 1)[0]
    target = node
    if "." in name:  # "app.open_map": the app's method
        namespace, name = name.rsplit(".", 1)
        target = node.app if namespace == "app" else node.screen if namespace == "screen" else node
    method = getattr(target, f"action_{name}", None)
    doc = (getattr(method, "__doc__", None) or "").strip().splitlines()
    return doc[0] if doc else ""


def every_binding(screen: Screen[Any]) -> Iterator[ActiveBinding]:
    """Each binding from the focused widget out to the app, including those a nearer binding of the same
    key shadows: ``Screen.active_bindings`` keeps one per key, and DataTable's own "enter" would hide the
    alert queue's "Detail". (``_modal_binding_chain`` is what ``active_bindings`` itself walks.)"""
    app = screen.app
    chain = screen._modal_binding_chain
    # A priority binding takes its key before anything focused sees it (the app's ctrl+c quits): that
    # key is not listed for any other action.
    taken = {key for _node, bindings in chain for key, binding in bindings if binding.priority}
    for node, bindings in chain:
        for key, binding in bindings:
            if key in taken and not binding.priority:
                continue
            state = app._check_action_state(binding.action, node)
            if state is not False:  # False: hidden where the palette was opened
                yield ActiveBinding(node, binding, bool(state), binding.tooltip)


def bound_actions(active: Iterable[ActiveBinding], key_display: Callable[[Any], str]) -> list[BoundAction]:
    """The actions behind ``active``, one entry per action with all its keys (``q / ^c``), in the order
    they come (nearest the focus first)."""
    merged: dict[tuple[str, int], tuple[str, list[str], str, DOMNode]] = {}
    for binding_node, binding, enabled, tooltip in active:
        if not enabled or not binding.description:
            continue
        held = merged.setdefault((binding.action, id(binding_node)),
                                 (binding.description, [], tooltip or binding.tooltip, binding_node))
        shown = key_display(binding)
        if shown not in held[1]:
            held[1].append(shown)
    return [BoundAction(name, " / ".join(keys), _help(node, action, tip), action, node)
            for (action, _), (name, keys, tip, node) in merged.items()]


class BindingCommands(Provider):
    """Lists every bound action of the screen the palette was opened on."""

    def _actions(self) -> list[BoundAction]:
        return bound_actions(every_binding(self.screen), self.app.get_key_display)

    def _run(self, bound: BoundAction) -> Callable[[], Any]:
        return partial(self.app.run_action, bound.action, bound.node)

    async def discover(self) -> Hits:
        for bound in self._actions():
            yield DiscoveryHit(bound.text, self._run(bound), text=bound.text, help=bound.help or None)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for bound in self._actions():
            # A key typed on its own ("a") finds its action as well as its name does.
            score = max(matcher.match(bound.text), 1.0 if query.strip().lower() in bound.keys.lower().split(" / ")
                        else 0.0)
            if score > 0:
                yield Hit(score, matcher.highlight(bound.text), self._run(bound), text=bound.text,
                          help=bound.help or None)
