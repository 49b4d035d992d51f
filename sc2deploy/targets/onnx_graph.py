"""The nodes of an ONNX file, read from its protobuf wire format (no ``onnx`` package, so
the device can name the graph's nodes; torch-free).

::

    ModelProto ─ graph (7) ─ GraphProto ─ node (1, repeated) ─ NodeProto
                                                                 ├ input   (1, repeated)
                                                                 ├ output  (2, repeated)
                                                                 ├ name    (3)
                                                                 └ op_type (4)

Only the main graph's nodes are read (not the subgraphs of If/Loop attributes).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Tuple, Union

from sc2deploy.errors import UsageError

_MODEL_GRAPH, _GRAPH_NODE = 7, 1
_NODE_OUTPUT, _NODE_NAME, _NODE_OP_TYPE = 2, 3, 4


@dataclass(frozen=True)
class GraphNode:
    name: str
    op_type: str
    outputs: Tuple[str, ...]


class _Malformed(Exception):
    pass


def _varint(data: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Malformed(f"a varint runs past byte {pos}")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[Tuple[int, Union[int, bytes]]]:
    """(field number, value) of one message: ints for varints and fixed-size fields, bytes for
    length-delimited ones."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise _Malformed(f"field {number} runs past the end ({pos + size} > {len(data)})")
            value, pos = data[pos:pos + size], pos + size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = int.from_bytes(data[pos:pos + width], "little"), pos + width
        else:
            raise _Malformed(f"field {number} has wire type {wire} (groups are not ONNX)")
        yield number, value


def graph_nodes(path: Union[str, Path]) -> List[GraphNode]:
    """The main graph's nodes of the ONNX file ``path``, in graph order."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the ONNX file ({exc.strerror or exc})") from None
    try:
        graphs = [v for n, v in _fields(data) if n == _MODEL_GRAPH and isinstance(v, bytes)]
        if not graphs:
            raise _Malformed("no graph (field 7) in the model")
        nodes = []
        for number, value in _fields(graphs[-1]):
            if number != _GRAPH_NODE or not isinstance(value, bytes):
                continue
            name, op_type, outputs = "", "", []
            for field, item in _fields(value):
                if not isinstance(item, bytes):
                    continue
                if field == _NODE_NAME:
                    name = item.decode("utf-8", "replace")
                elif field == _NODE_OP_TYPE:
                    op_type = item.decode("utf-8", "replace")
                elif field == _NODE_OUTPUT:
                    outputs.append(item.decode("utf-8", "replace"))
            nodes.append(GraphNode(name, op_type, tuple(outputs)))
    except _Malformed as exc:
        raise UsageError(f"{path} is not a readable ONNX model ({exc}): expected the .onnx "
                         "file of a bundle's artifact; rebuild it") from None
    return nodes
