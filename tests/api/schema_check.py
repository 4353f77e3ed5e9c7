"""A small checker of JSON values against the OpenAPI 3.1 (JSON Schema) shapes that ninja
generates: $ref, anyOf, type, enum/const, properties, required, additionalProperties, items,
and the date / date-time formats. Enough for our schemas; no new dependency."""

from datetime import date, datetime

TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def problems(value, schema, components, path="$"):
    """What is wrong with ``value`` against ``schema``: a list of messages, empty when it fits."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return problems(value, components[name], components, path)
    if "anyOf" in schema:
        options = [problems(value, s, components, path) for s in schema["anyOf"]]
        return [] if any(not o for o in options) else [f"{path}: fits no option ({options})"]
    if "allOf" in schema:
        return [p for s in schema["allOf"] for p in problems(value, s, components, path)]
    out = []
    kind = schema.get("type")
    if kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: {value!r} is not an integer"]
    elif kind == "number":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return [f"{path}: {value!r} is not a number"]
    elif kind is not None and not isinstance(value, TYPES[kind]):
        return [f"{path}: {value!r} is not {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: {value!r} is not {schema['const']!r}")
    fmt = schema.get("format")
    if isinstance(value, str) and fmt in ("date", "date-time"):
        try:
            (date.fromisoformat if fmt == "date" else datetime.fromisoformat)(value)
        except ValueError:
            out.append(f"{path}: {value!r} is not a {fmt}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                out.append(f"{path}: missing {name}")
        for name, item in value.items():
            if name in props:
                out += problems(item, props[name], components, f"{path}.{name}")
            elif schema.get("additionalProperties") is False or (
                    props and "additionalProperties" not in schema):
                out.append(f"{path}: {name} is not declared")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += problems(item, schema["additionalProperties"], components,
                                f"{path}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += problems(item, schema["items"], components, f"{path}[{i}]")
    return out


def response_schema(openapi, path, method, status):
    operation = openapi["paths"][path][method.lower()]
    content = operation["responses"][str(status)]["content"]
    return next(iter(content.values()))["schema"]
