"""The ASGI endpoint of the schema, mounted by the app at ``/graphql``.

strawberry's Starlette integration does the HTTP (POST and GET queries) and
WebSocket work; this adds only what ratel needs: the caller from the bearer
token and a fresh ``RequestContext`` (with new DataLoaders) per request.
"""

from __future__ import annotations

from typing import Any

import strawberry
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from ratel.graphql.context import (
    Authenticate,
    Loaders,
    RequestContext,
    Unauthenticated,
    UseCases,
    principal_for,
)


class RatelGraphQL(GraphQL[RequestContext, None]):
    """``/graphql``: queries over GET and POST, GraphiQL when enabled,
    subscriptions over WebSocket (graphql-transport-ws)."""

    def __init__(
        self,
        schema: strawberry.Schema,
        use_cases: UseCases,
        authenticate: Authenticate,
        *,
        graphiql: bool,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self._use_cases = use_cases
        self._authenticate = authenticate

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        try:
            principal = await principal_for(
                request.headers.get("authorization"), self._authenticate
            )
        except Unauthenticated as refused:
            if isinstance(request, WebSocket):
                raise  # strawberry closes the socket
            raise HTTPException(401, "authentication failed: log in again") from refused
        return RequestContext(
            principal=principal,
            use_cases=self._use_cases,
            loaders=Loaders(self._use_cases),
            request=request,
            response=response,
            authorization=request.headers.get("authorization"),
            authenticate=self._authenticate,
        )

    async def get_root_value(self, request: Any) -> None:
        return None

    async def on_ws_connect(self, context: RequestContext) -> UnsetType | None | dict[str, object]:
        """graphql-transport-ws ``connection_init``: a browser cannot set
        headers on a websocket, so the token may come in the payload
        (``{"Authorization": "Bearer ..."}``) instead of the upgrade request's
        header. A refused token closes the socket (4403)."""
        params = context.connection_params or {}
        authorization = params.get("Authorization", params.get("authorization"))
        if authorization is None:
            return await super().on_ws_connect(context)
        if not isinstance(authorization, str):
            raise ConnectionRejectionError()
        try:
            context.principal = await principal_for(authorization, self._authenticate)
        except Unauthenticated:
            raise ConnectionRejectionError() from None
        context.authorization = authorization
        return await super().on_ws_connect(context)
