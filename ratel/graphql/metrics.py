"""Every GraphQL operation counted and timed (protocol ``graphql``), like the
use cases and the protocol listeners.

The operation label is the operation type and its first root field
(``query.ussdBalance``, ``mutation.staffLogin``): a bounded set, whatever
names clients give their operations. The outcome is ``ok``; ``rejected``
when the permission matrix or the query limits refused it (a caller's
mistake, expected); ``error`` when a resolver failed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol

from graphql import FieldNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

PROTOCOL = "graphql"

#: Error codes that mean "the caller may not" (the schema's REFUSAL_CODES).
_REFUSALS = frozenset({"UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "TOO_MANY_SUBSCRIPTIONS"})


class OperationRecorder(Protocol):
    """Where the figures go (``Telemetry`` in ratel)."""

    def record(
        self, protocol: str, operation: str, outcome: str, seconds: float, code: str = ""
    ) -> None:
        """Account for one finished operation."""
        ...


class OperationMetrics(SchemaExtension):
    """Records one observation per operation."""

    def __init__(self, recorder: OperationRecorder) -> None:
        super().__init__()
        self._recorder = recorder

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        # strawberry keeps a resolver's errors in both places: count each once
        errors = {id(e): e for e in context.pre_execution_errors or []}
        result = context.result
        errors.update({id(e): e for e in getattr(result, "errors", None) or []})
        # parse and validation errors point at no field (no path)
        invalid = any(e.path is None for e in errors.values())
        outcome, code = "ok", ""
        if invalid:
            outcome, code = "rejected", "invalid_query"
        elif errors:
            codes = {(e.extensions or {}).get("code") for e in errors.values()}
            refusal = sorted(c for c in codes if isinstance(c, str) and c in _REFUSALS)
            outcome, code = ("rejected", refusal[0]) if refusal else ("error", "resolver_error")
        # an invalid query may name anything: never a label of its own
        label = "invalid" if invalid else self._operation_label()
        self._recorder.record(PROTOCOL, label, outcome, time.perf_counter() - started, code)

    def _operation_label(self) -> str:
        document = self.execution_context.graphql_document
        if document is None:
            return "unparsed"
        wanted = self.execution_context.operation_name
        for definition in document.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            if wanted is not None and (definition.name is None or definition.name.value != wanted):
                continue
            kind = definition.operation.value
            for selection in definition.selection_set.selections:
                if isinstance(selection, FieldNode):
                    return f"{kind}.{selection.name.value}"
            return kind
        return "unknown"
