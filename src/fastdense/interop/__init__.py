"""fastdense models in and out of other frameworks: ONNX export.

| call | what it does |
|---|---|
| `export_onnx(model, path, opset=None)` | write an ONNX file computing ``model.predict`` (opset 13 by default; see `onnx_export`) |
| `to_onnx(model, opset=None)` | the same graph as an ``onnx.ModelProto`` |
| `export_main(args)` | the ``fastdense export MODEL.npz MODEL.onnx`` command (`cli`) |

onnx (with onnxruntime to run the result) is optional: it is imported only by the
functions that use it (``pip install 'fastdense[onnx]'``), and a missing one raises
ImportError saying so. Importing this package imports none of them.
"""
from .cli import add_export_parser, export_main
from .onnx_export import DEFAULT_OPSET, export_onnx, to_onnx

__all__ = ["export_onnx", "to_onnx", "DEFAULT_OPSET", "export_main", "add_export_parser"]
