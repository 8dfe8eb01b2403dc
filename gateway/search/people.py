"""People behind a query's addresses: `contact:` is one address, and a pupil may write from
home and from school. Said beside the results, never used to widen them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.directory.model import DirectoryView
from gateway.search.query import Address, And, Node, Or


@dataclass(frozen=True)
class OtherAddresses:
    address: str  # as the query names it
    name: str  # the person's, from the directory
    others: tuple[str, ...]  # their addresses the query does not name


def other_addresses(node: Node, directory: Callable[[], DirectoryView]) -> list[OtherAddresses]:
    """Each whole address a `contact:` term names (not one excluded) whose person the
    directory knows by other addresses too, not in the query. `directory` is asked only when
    the query names one (the CLI reads the whole directory from the database)."""
    named: list[str] = []
    nodes: list[Node] = [node]
    while nodes:
        item = nodes.pop()
        if isinstance(item, And | Or):
            nodes.extend(item.items)
        elif isinstance(item, Address) and item.field == "contact" and not item.domain:
            named.append(item.value)
    if not named:
        return []
    view = directory()
    found = []
    for address in dict.fromkeys(named):
        person = view.contact(address)
        rest = tuple(a for a in person.emails if a not in named) if person else ()
        if person and rest:
            found.append(OtherAddresses(address, person.name, rest))
    return found
