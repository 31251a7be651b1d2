"""The EC2 Query protocol, driven by botocore's EC2 service model (2016-11-15).

Requests are form fields (`Action`, `Version`, then one field per scalar, with
dotted paths for nesting: `Options.TunnelOptions.1.Phase1DHGroupNumber.1.Value`,
`Filter.1.Value.2`, `TagSpecification.1.Tag.1.Key`). A field's name comes from
the model exactly as botocore's EC2 serializer writes it: a member's
`queryName`, else its `locationName` with a capital first letter, else the
member name; list items are `.N` (1-based) whatever the member is called.
`parse_request` walks each received field through the operation's input shape,
so an unknown field is AWS's UnknownParameter and a malformed number its
InvalidParameterValue, and returns the input shape's dict (what boto3 takes).

Responses are `<ActionResponse xmlns=...><requestId>..</requestId>...` with
each member under its `locationName` and list items under the member's
locationName (`item`), as botocore's EC2 parser reads them. Errors are AWS's
`<Response><Errors><Error><Code>..` document.

Why not moto's EC2QueryParser/EC2Serializer: measured in docs/api.md (they
bring moto and its dependencies into the daemon, are internal API, ignore
unknown fields and raise ValueError on a bad integer); this module is the small
model-driven walk vgw needs, over botocore's public ServiceModel.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape
from datetime import datetime, timezone
from typing import Any

from .errors import ApiError, bad_value, missing

API_VERSION = "2016-11-15"
XMLNS = f"http://ec2.amazonaws.com/doc/{API_VERSION}/"
MAX_FIELDS = 2000  # far above any request of the supported actions
MAX_LIST_INDEX = 1000
_INTEGER = re.compile(r"-?[0-9]{1,20}")


@functools.cache
def service_model():
    """botocore's EC2 model, loaded once (about 0.4 s: do it at startup)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("ec2", api_version=API_VERSION)


@functools.cache
def operation(action: str):
    """The operation model for `action`; InvalidAction if EC2 has no such action."""
    from botocore.model import OperationNotFoundError

    try:
        return service_model().operation_model(action)
    except OperationNotFoundError:
        raise ApiError("InvalidAction", f"The action {action} is not valid for this web service.") from None


def _wire_name(name: str, shape) -> str:
    """A member's field name in an EC2 Query request (botocore's EC2 serializer rule)."""
    serialization = shape.serialization
    if "queryName" in serialization:
        return serialization["queryName"]
    if "name" in serialization:
        location = serialization["name"]
        return location[0].upper() + location[1:]
    return name


@functools.cache
def _members_by_wire_name(shape) -> dict[str, str]:
    return {_wire_name(name, member): name for name, member in shape.members.items()}


def _scalar(shape, text: str, field: str) -> Any:
    kind = shape.type_name
    if kind in ("integer", "long"):
        if not _INTEGER.fullmatch(text):
            raise bad_value(text, field, "It must be a whole number.")
        return int(text)
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise bad_value(text, field, "It must be true or false.")
        return text.lower() == "true"
    if kind in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            raise bad_value(text, field, "It must be a number.") from None
    if kind == "timestamp":
        from botocore.utils import parse_timestamp

        try:
            return parse_timestamp(text)
        except (ValueError, TypeError):
            raise bad_value(text, field, "It must be an ISO 8601 time.") from None
    if shape.enum and text not in shape.enum:
        raise bad_value(text, field, f"Valid values: {', '.join(shape.enum)}.")
    return text


def _unknown(field: str) -> ApiError:
    return ApiError("UnknownParameter", f"The parameter {field} is not recognized")


def _insert(shape, node: dict, parts: list[str], value: str, field: str) -> None:
    """Put one field's value at its place in the nested dict being built.

    Lists are built as {index: item} and turned into Python lists by _finish."""
    if not parts:
        raise _unknown(field)
    if shape.type_name == "structure":
        member = _members_by_wire_name(shape).get(parts[0])
        if member is None:
            raise _unknown(field)
        member_shape = shape.members[member]
        if member_shape.type_name in ("structure", "list"):
            child = node.setdefault(member, {})
            _insert(member_shape, child, parts[1:], value, field)
            return
        if len(parts) != 1:
            raise _unknown(field)
        node[member] = _scalar(member_shape, value, field)
        return
    if shape.type_name == "list":
        index = parts[0]
        if not index.isdigit() or not 1 <= int(index) <= MAX_LIST_INDEX:
            raise bad_value(index, field, f"A list index must be between 1 and {MAX_LIST_INDEX}.")
        member_shape = shape.member
        if member_shape.type_name in ("structure", "list"):
            child = node.setdefault(int(index), {})
            _insert(member_shape, child, parts[1:], value, field)
            return
        if len(parts) != 1:
            raise _unknown(field)
        node[int(index)] = _scalar(member_shape, value, field)
        return
    raise _unknown(field)  # maps are not used by the EC2 VPN actions


def _finish(shape, node: Any) -> Any:
    """Turn {index: item} into lists (in index order) and check required members."""
    if shape.type_name == "list":
        items = []
        top = max(node) if node else 0
        for index in range(1, top + 1):
            if index in node:
                items.append(_finish(shape.member, node[index]))
            elif shape.member.type_name == "structure":
                # A list of structures keeps positions: TunnelOptions.2 alone is the
                # second tunnel (Terraform omits an empty first one).
                items.append({})
        return items
    if shape.type_name == "structure":
        return {name: _finish(shape.members[name], value) for name, value in node.items()}
    return node


def _check_required(shape, node: dict, prefix: str) -> None:
    for name in shape.required_members:
        if name not in node:
            raise missing(prefix + _wire_name(name, shape.members[name]))
    for name, value in node.items():
        member = shape.members[name]
        field = prefix + _wire_name(name, member)
        if member.type_name == "structure":
            _check_required(member, value, field + ".")
        elif member.type_name == "list" and member.member.type_name == "structure":
            for index, item in enumerate(value, 1):
                if item:
                    _check_required(member.member, item, f"{field}.{index}.")


def parse_request(action: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
    """The input shape's dict from an EC2 Query request's fields (minus Action/Version)."""
    if len(fields) > MAX_FIELDS:
        raise ApiError("InvalidParameterValue", f"The request has more than {MAX_FIELDS} parameters.")
    shape = operation(action).input_shape
    root: dict = {}
    for field, value in fields:
        if shape is None:
            raise _unknown(field)
        _insert(shape, root, field.split("."), value, field)
    if shape is None:
        return {}
    parsed = _finish(shape, root)
    _check_required(shape, parsed, "")
    return parsed


# ---------------------------------------------------------------------------
# Responses


def _timestamp(value: datetime | float) -> str:
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, tz=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _text(shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind in ("integer", "long"):
        return str(int(value))
    if kind == "timestamp":
        return _timestamp(value)
    return str(value)


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """Escaped, and with the characters XML 1.0 cannot carry replaced (a client's
    parser would refuse the whole document otherwise)."""
    return escape(_NOT_XML.sub("?", text))


def _element(out: list[str], tag: str, shape, value: Any) -> None:
    out.append(f"<{tag}>")
    if shape.type_name == "structure":
        _members(out, shape, value)
    elif shape.type_name == "list":
        item_tag = shape.member.serialization.get("name", "member")
        for item in value:
            _element(out, item_tag, shape.member, item)
    else:
        out.append(_xml_text(_text(shape, value)))
    out.append(f"</{tag}>")


def _members(out: list[str], shape, value: dict) -> None:
    unknown = set(value) - set(shape.members)
    if unknown:  # a programming error: the handler built a dict the model does not have
        raise KeyError(f"{shape.name} has no member(s) {sorted(unknown)}")
    for name, member in shape.members.items():
        item = value.get(name)
        if item is not None:
            _element(out, member.serialization.get("name", name), member, item)


def serialize_response(action: str, result: dict[str, Any], request_id: str) -> bytes:
    """The XML body of a successful `action` answer carrying `result` (output shape dict).

    Written as text (escaped) rather than through ElementTree: a DescribeVpnConnections
    of ten connections is ~100 KB and ElementTree took most of the request's time."""
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{XMLNS}">',
           f"<requestId>{escape(request_id)}</requestId>"]
    shape = operation(action).output_shape
    if shape is not None:
        _members(out, shape, result)
    out.append(f"</{action}Response>")
    return "".join(out).encode("utf-8")


def serialize_error(code: str, message: str, request_id: str) -> bytes:
    """AWS's EC2 error document."""
    root = ET.Element("Response")
    error = ET.SubElement(ET.SubElement(root, "Errors"), "Error")
    ET.SubElement(error, "Code").text = code
    ET.SubElement(error, "Message").text = _NOT_XML.sub("?", message)
    ET.SubElement(root, "RequestID").text = request_id
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)
