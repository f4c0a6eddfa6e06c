"""What a query may cost: the nodes it may return, counted before it runs.

GitHub's node limit, for ratel. The depth, alias and token limits bound the
shape of a document, not what it reads: fifteen aliases of a page of 100
customers, each with 100 transactions and its accounts' xDRs, are within
all three and read millions of rows on a large database. So the nodes a
query may return are counted from the document and the request's variables:

- a connection (a field returning a ``...Connection`` type) returns up to
  ``first`` nodes (``DEFAULT_FIRST`` without it) for every node of its
  parent; its ``edges``/``nodes`` are those nodes, not another list;
- a plain list of objects (``Account.quotas``, ``Customer.products``, an
  account's ``addOns``, ...) has no page size: it counts ``fanout`` nodes
  per parent node;
- a single object costs nothing of its own, its selection counts under it;
- fragments and inline fragments count where they are spread; introspection
  (``__schema``, ``__type``, ``__typename``) is not counted.

So ``customers(first: 100) { nodes { transactions(first: 50) { nodes { id } } } }``
may return 100 + 100 x 50 = 5,100 nodes. Repeated fields are counted each
time even where GraphQL merges them: the count is an upper bound.

The count needs the variables (``first: $first``), which a validation rule
never sees, and strawberry caches validation per query text: so the limit
is checked by ``QueryCostLimiter`` when execution starts, after validation
and before any resolver (so before any SQL).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_composite_type,
    value_from_ast_untyped,
)
from strawberry.extensions import SchemaExtension

from ratel.graphql.types import DEFAULT_FIRST, MAX_FIRST

#: The nodes a plain (unpaged) list of objects is counted for, per parent node.
LIST_FANOUT = 10


def query_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
    *,
    fanout: int = LIST_FANOUT,
) -> int:
    """The nodes the operation ``operation_name`` of a valid ``document`` may
    return (the largest of its operations when no name is given)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    costs = [
        _Count(schema, fragments, operation, variables or {}, fanout).operation()
        for operation in _operations(document, operation_name)
    ]
    return max(costs, default=0)


def _operations(document: DocumentNode, name: str | None) -> Iterator[OperationDefinitionNode]:
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if name is None or (definition.name is not None and definition.name.value == name):
            yield definition


class _Count:
    """One operation's count. Every count is per node of the parent (the
    total is linear in it), so a fragment is counted once however often it
    is spread: a document of fragments spreading fragments costs no more to
    count than its length."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
        fanout: int,
    ) -> None:
        self._schema = schema
        self._fragments = fragments
        self._operation = operation
        self._variables = dict(variables)
        self._defaults = {
            d.variable.name.value: d.default_value for d in operation.variable_definitions or ()
        }
        self._fanout = fanout
        self._fragment_costs: dict[str, int] = {}
        self._counting: set[str] = set()

    def operation(self) -> int:
        root = self._schema.get_root_type(self._operation.operation)
        if root is None:
            return 0
        return self._selections(self._operation.selection_set, root)

    def _selections(self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                scope = self._schema.get_type(condition.name.value) if condition else parent
                total += self._selections(selection.selection_set, scope)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value)
        return total

    def _fragment(self, name: str) -> int:
        if name in self._fragment_costs:
            return self._fragment_costs[name]
        fragment = self._fragments.get(name)
        if fragment is None or name in self._counting:  # validation refuses both
            return 0
        self._counting.add(name)
        scope = self._schema.get_type(fragment.type_condition.name.value)
        cost = self._selections(fragment.selection_set, scope)
        self._counting.discard(name)
        self._fragment_costs[name] = cost
        return cost

    def _field(self, node: FieldNode, parent: GraphQLNamedType | None) -> int:
        name = node.name.value
        if name.startswith("__") or node.selection_set is None:
            return 0  # introspection, or a scalar: no nodes of its own
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        definition = parent.fields.get(name)
        if definition is None:
            return 0
        returned: GraphQLType = get_nullable_type(definition.type)
        below = self._selections(node.selection_set, get_named_type(returned))
        if _is_connection(parent) and name in ("edges", "nodes"):
            return below  # the connection's own nodes, counted at the connection
        if _is_connection(returned):
            return self._first(node) * (1 + below)
        if isinstance(returned, GraphQLList) and is_composite_type(get_named_type(returned)):
            return self._fanout * (1 + below)
        return below

    def _first(self, node: FieldNode) -> int:
        """The page a connection field asks for. ``first`` given as a variable
        is the request's value, else the variable's default; without either
        it is the default page. A value the resolver refuses (below 1, above
        ``MAX_FIRST``) reads nothing, so no more than ``MAX_FIRST`` is counted;
        one that is not an integer fails before any resolver, counted as
        ``MAX_FIRST`` all the same."""
        argument = next((a for a in node.arguments or () if a.name.value == "first"), None)
        value = self._value(argument.value) if argument is not None else None
        if value is None:
            return DEFAULT_FIRST
        if isinstance(value, bool) or not isinstance(value, int):
            return MAX_FIRST
        return min(max(int(value), 0), MAX_FIRST)

    def _value(self, node: ValueNode) -> Any:
        if isinstance(node, VariableNode):
            name = node.name.value
            if name in self._variables:
                return self._variables[name]
            default = self._defaults.get(name)
            return value_from_ast_untyped(default) if default is not None else None
        return value_from_ast_untyped(node, self._variables)


def _is_connection(type_: GraphQLType | None) -> bool:
    """A Relay-style page (``ratel.graphql.types.Connection``)."""
    return (
        isinstance(type_, GraphQLObjectType)
        and type_.name.endswith("Connection")
        and "edges" in type_.fields
        and "pageInfo" in type_.fields
    )


class QueryCostLimiter(SchemaExtension):
    """Refuses, before any resolver runs, an operation that may return more
    than ``max_nodes`` nodes: a ``QUERY_TOO_COSTLY`` error naming both."""

    def __init__(self, max_nodes: int, *, fanout: int = LIST_FANOUT) -> None:
        super().__init__()
        self.max_nodes = max_nodes
        self.fanout = fanout

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            cost = query_cost(
                context.schema._schema,
                document,
                context.operation_name,
                context.variables,
                fanout=self.fanout,
            )
            if cost > self.max_nodes:
                raise GraphQLError(
                    f"this query may return {cost:,} nodes, more than the {self.max_nodes:,} "
                    "allowed: ask for smaller pages (first) or fewer nested lists",
                    extensions={"code": "QUERY_TOO_COSTLY", "cost": cost, "limit": self.max_nodes},
                )
        yield
