"""Pre-labels as Pascal VOC XML, the one-file-per-image format Roboflow's upload reads as is.

Roboflow's ``save_annotation`` sends an annotation file's text with its file name and lets the
server recognise the format. VOC carries the image size and class names inside each file, so it
needs no label map (YOLO text does) and no dataset-wide wrapper (COCO does); a folder of
``name.jpg`` + ``name.xml`` pairs is also what Roboflow's web import and ``roboflow import``
pair up one to one, and what desktop labelling tools (labelImg, CVAT) open for review.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from livecam.predictions import Prediction

# Characters XML 1.0 cannot hold at all, escaped or not: most controls, surrogates, U+FFFE/U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def voc_xml(filename: str, size: tuple[int, int], predictions: Iterable[Prediction]) -> str:
    """A VOC ``<annotation>`` for image ``filename`` of ``size`` (width, height) with one box per prediction.

    Boxes are rounded to whole pixels and clipped to the image; boxes that end up empty are left out.
    """
    width, height = size
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = ""
    ET.SubElement(root, "filename").text = xml_text(filename)
    ET.SubElement(root, "path").text = xml_text(filename)
    source = ET.SubElement(root, "source")
    ET.SubElement(source, "database").text = "livecam"
    size_el = ET.SubElement(root, "size")
    ET.SubElement(size_el, "width").text = str(width)
    ET.SubElement(size_el, "height").text = str(height)
    ET.SubElement(size_el, "depth").text = "3"
    ET.SubElement(root, "segmented").text = "0"
    for p in predictions:
        x1, x2 = _clip(p.x1, width), _clip(p.x2, width)
        y1, y2 = _clip(p.y1, height), _clip(p.y2, height)
        if x2 <= x1 or y2 <= y1:
            continue
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = xml_text(p.class_name) or "object"
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        ET.SubElement(obj, "occluded").text = "0"
        box = ET.SubElement(obj, "bndbox")
        for tag, value in (("xmin", x1), ("ymin", y1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(box, tag).text = str(value)
    ET.indent(root, "\t")
    return ET.tostring(root, encoding="unicode") + "\n"


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids, so the file parses whatever the name held."""
    return _NOT_XML.sub("", text)


def _clip(value: float, limit: int) -> int:
    return min(limit, max(0, round(value)))
