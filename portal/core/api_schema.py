"""The OpenAPI schema's finishing (drf-spectacular POSTPROCESSING_HOOKS, after its enum hook):
every enum a named component, query parameters' too, and the errors any operation can answer
documented once here rather than by hand on each view.

- 401: no or a bad token, on every operation that needs credentials;
- 403: authenticated but refused (a session request without its CSRF token, a customer member
  asking for what only a customer admin may do);
- 404: on every operation whose path names an object (scoped to the organisation);
- 413 and 415: on every operation that takes a body;
- 429: on every write (portal.core.throttles.WriteRateThrottle; reads are not throttled).
403, 413 and 429 are the customers' API's answers (portal.core.api.CustomerApi and its throttle):
an operation that takes other credentials (the monitoring webhook's bearer token) gets only 401
and, with a body, 415."""

from __future__ import annotations

from inflection import camelize

ERROR_REF = {"$ref": "#/components/schemas/Error"}
WRITES = {"post", "put", "patch", "delete"}
CUSTOMER_SCHEMES = {"tokenAuth", "cookieAuth"}
STANDARD = {
    "401": "No credentials, or a token that is unknown, expired or revoked (`WWW-Authenticate: Token`).",
    "403": "Authenticated but refused: a session request without its CSRF token, or an action your role "
    "does not have (customer admins only).",
    "404": "No such object in your organisation (another organisation's object looks the same as one that "
    "never existed).",
    "413": "The request body is larger than the portal accepts.",
    "415": "The body is not of the documented media type (or has none).",
    "429": "Too many writes: wait for the number of seconds in `Retry-After`.",
}


def _error(code: str) -> dict:
    return {"description": STANDARD[code], "content": {"application/json": {"schema": ERROR_REF}}}


def _applies(code: str, path: str, method: str, operation: dict) -> bool:
    schemes = {name for requirement in operation.get("security", [{}]) for name in requirement}
    customers = bool(schemes & CUSTOMER_SCHEMES)
    if code == "401":
        return bool(schemes)
    if code == "403":
        return customers
    if code == "404":
        return "{" in path
    if code == "415":
        return "requestBody" in operation
    if code == "413":
        return "requestBody" in operation and customers
    return code == "429" and method in WRITES and customers


def _enum_components(result: dict) -> dict[frozenset, str]:
    """The named enums, by their set of values."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    return {frozenset(s["enum"]): name for name, s in schemas.items() if "enum" in s and len(s["enum"]) > 1}


def _name_parameter_enums(result: dict) -> None:
    """A query parameter's inline enum becomes a reference to the component with the same values,
    or to a new one named by the field (`x-enum-name`) or by operation and parameter."""
    schemas = result["components"]["schemas"]
    known = _enum_components(result)
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if "enum" not in schema:
                    continue
                values = [v for v in schema["enum"] if v not in ("", None)]
                name = schema.pop("x-enum-name", None) or known.get(frozenset(values))
                if name is None:
                    name = camelize(f"{operation['operationId']}_{parameter['name']}") + "Enum"
                schemas.setdefault(name, {"type": schema.get("type", "string"), "enum": values})
                known.setdefault(frozenset(values), name)
                # A $ref stands alone in OpenAPI 3.0: the default is in the parameter's description.
                parameter["schema"] = {"$ref": f"#/components/schemas/{name}"}


def postprocess_api(result, generator, request, public):
    _name_parameter_enums(result)
    uses_error = False
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for code in STANDARD:
                if code not in responses and _applies(code, path, method, operation):
                    responses[code] = _error(code)
                    uses_error = True
            operation["responses"] = dict(sorted(responses.items()))
    if uses_error and "Error" not in result["components"]["schemas"]:
        result["components"]["schemas"]["Error"] = {
            "type": "object",
            "properties": {"detail": {"type": "string"}},
            "required": ["detail"],
        }
    result["components"]["schemas"] = dict(sorted(result["components"]["schemas"].items()))
    return result
