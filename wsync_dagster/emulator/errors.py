"""Errors the emulator answers with, each carrying its HTTP status."""


class ApiError(Exception):
    """A Warehouse Sync / Profile API error: ``{"statusCode": N, "errors": [{"message": ...}]}``."""

    def __init__(self, status: int, *messages: str, headers: dict[str, str] | None = None) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = list(messages)
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"statusCode": self.status, "errors": [{"message": m} for m in self.messages]}


class TokenError(Exception):
    """An OAuth token endpoint error, in the Auth0 shape ``{"error": ..., "error_description": ...}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def bad_request(*messages: str) -> ApiError:
    return ApiError(400, *messages)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)
