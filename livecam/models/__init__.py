"""The bundled COCO detector (NanoDet, ONNX), its class names and NOTICE."""
