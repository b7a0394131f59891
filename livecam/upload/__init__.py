"""Sending collected frames and their pre-labels to a Roboflow project (``livecam upload``)."""

from livecam.upload.api import DEFAULT_API_URL, RoboflowUploadApi, UploadError, UploadRefused, UploadTarget
from livecam.upload.journal import JOURNAL_NAME, Journal
from livecam.upload.runner import DEFAULT_BATCH, SPLITS, UploadOptions, UploadResult, upload_folder

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_BATCH",
    "JOURNAL_NAME",
    "SPLITS",
    "Journal",
    "RoboflowUploadApi",
    "UploadError",
    "UploadOptions",
    "UploadRefused",
    "UploadResult",
    "UploadTarget",
    "upload_folder",
]
