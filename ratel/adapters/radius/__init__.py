"""RADIUS: the authentication and accounting server (RFC 2865 / 2866) and the
dynamic authorization client (RFC 5176 CoA / Disconnect), on asyncio, with
pyrad encoding and decoding the packets."""
