"""fastdense models in and out of other frameworks: ONNX export, PyTorch and Keras 3.

| call | what it does |
|---|---|
| `export_onnx(model, path, opset=None)` | write an ONNX file computing ``model.predict`` (opset 13 by default; see `onnx_export`) |
| `to_onnx(model, opset=None)` | the same graph as an ``onnx.ModelProto`` |
| `from_torch(module, dtype=None)` / `to_torch(model)` | a ``torch.nn.Sequential`` of ``nn.Linear`` and activation modules, both ways (`torch_interop`) |
| `from_keras(keras_model, dtype=None)` / `to_keras(model)` | a Keras 3 ``keras.Sequential`` of ``Dense`` layers, both ways (`keras_interop`) |
| `export_main(args)` | the ``fastdense export MODEL.npz MODEL.onnx`` command (`cli`) |

onnx (with onnxruntime to run the result), torch and keras are optional: each is imported
only by the functions that use it (``pip install 'fastdense[onnx]'``, ``[torch]``,
``[keras]``), and a missing one raises ImportError saying so. Importing this package
imports none of them.
"""
from .cli import add_export_parser, export_main
from .keras_interop import from_keras, keras_custom_objects, to_keras
from .onnx_export import DEFAULT_OPSET, export_onnx, to_onnx
from .torch_interop import from_torch, to_torch

__all__ = ["export_onnx", "to_onnx", "DEFAULT_OPSET", "from_torch", "to_torch", "from_keras",
           "to_keras", "keras_custom_objects", "export_main", "add_export_parser"]
