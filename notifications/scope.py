"""What a websocket's handshake carries, read from its ASGI scope: query-string arguments and headers."""

from urllib.parse import parse_qs


def query_value(scope, name):
    """Return the first non-blank value of `name` in the query string, or None."""
    values = parse_qs(scope.get("query_string", b"").decode("latin1")).get(name)
    return values[0] if values else None


def header_value(scope, name):
    """Return the first header called `name` (lower-case bytes, as ASGI names them), decoded, or None."""
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None
