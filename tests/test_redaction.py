"""The one redaction, over a table of real camera, stream and API URL forms."""

from __future__ import annotations

import pytest

from livecam.redaction import redact, redact_url

CASES = [
    # user:pass@ in every scheme, an unescaped "@" in the password too
    (
        "rtsp://admin:CaMpAsS1@192.168.1.64:554/Streaming/Channels/101",
        "rtsp://***@192.168.1.64:554/Streaming/Channels/101",
    ),
    (
        "rtsp://admin:p@ss@10.0.0.5/cam/realmonitor?channel=1&subtype=0",
        "rtsp://***@10.0.0.5/cam/realmonitor?channel=1&subtype=0",
    ),
    ("http://viewer@cam.local/mjpg/video.mjpg", "http://***@cam.local/mjpg/video.mjpg"),
    ("https://u:p%40ss@host/x?token=T&Access_Token=A", "https://***@host/x?token=***&Access_Token=***"),
    # query names
    ("http://cam/videostream.cgi?user=admin&pwd=S3cret", "http://cam/videostream.cgi?user=***&pwd=***"),
    (
        "http://cam/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=admin&pwd=S3cret",
        "http://cam/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=***&pwd=***",
    ),
    ("http://cam/snapshot.cgi?user=admin&pass=S3cret", "http://cam/snapshot.cgi?user=***&pass=***"),
    (
        "http://cam/livestream.cgi?loginuse=admin&loginpas=S3cret&streamid=0",
        "http://cam/livestream.cgi?loginuse=***&loginpas=***&streamid=0",
    ),
    (
        "http://cam/video.cgi?passwd=a&password=b&passphrase=c",
        "http://cam/video.cgi?passwd=***&password=***&passphrase=***",
    ),
    (
        "https://api/x?api_key=K&api-key=K&apikey=K&key=K&jwt=J&auth=A",
        "https://api/x?api_key=***&api-key=***&apikey=***&key=***&jwt=***&auth=***",
    ),
    ("https://h/v?sig=S&signature=S&format=json", "https://h/v?sig=***&signature=***&format=json"),
    (
        "https://b.s3.amazonaws.com/v.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20261206&"
        "X-Amz-Date=20261206T000000Z&X-Amz-Security-Token=IQo&X-Amz-Signature=abc123",
        "https://b.s3.amazonaws.com/v.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***&"
        "X-Amz-Date=20261206T000000Z&X-Amz-Security-Token=***&X-Amz-Signature=***",
    ),
    # ;token= parameters and the DVR path form
    ("rtsp://host:554/live/ch00_0;token=abc123", "rtsp://host:554/live/ch00_0;token=***"),
    ("http://host/stream?a=1;token=abc;b=2", "http://host/stream?a=1;token=***;b=2"),
    (
        "rtsp://10.0.0.9:554/user=admin&password=S3cret&channel=1&stream=0.sdp?",
        "rtsp://10.0.0.9:554/user=***&password=***&channel=1&stream=0.sdp?",
    ),
    # SRT, RTMP stream keys
    ("srt://host:9000?mode=caller&passphrase=LongS3cretPhrase", "srt://host:9000?mode=caller&passphrase=***"),
    ("rtmp://live.twitch.tv/app/live_123456_abcdef", "rtmp://live.twitch.tv/app/***"),
    ("rtmps://live-api-s.facebook.com:443/rtmp/FB-1234-0-Ab", "rtmps://live-api-s.facebook.com:443/rtmp/***"),
    ("rtmp://a.rtmp.youtube.com/live2/xxxx-xxxx-xxxx-xxxx", "rtmp://a.rtmp.youtube.com/live2/***"),
    # nothing to hide
    ("rtmp://host/live", "rtmp://host/live"),
    (
        "http://host:8080/video.mjpg?resolution=640x480&monkey=1",
        "http://host:8080/video.mjpg?resolution=640x480&monkey=1",
    ),
    ("0", "0"),
    ("sample_videos/vtest.avi", "sample_videos/vtest.avi"),
]


@pytest.mark.parametrize(("url", "expected"), CASES)
def test_camera_url_forms(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact(url) == expected


def test_urls_inside_messages_and_the_key_anywhere() -> None:
    key = "rf+SECRET/key=42"
    message = (
        f"cannot reach http://user:pw@h:9001/coco/1?api_key={key}&token=T (refused); "
        f"stream rtsp://admin:CaMpAsS1@cam/x failed; Authorization: Bearer {key}; echoed {key}"
    )
    text = redact(message, key)
    for secret in (key, "pw@", "token=T", "CaMpAsS1", "SECRET"):
        assert secret not in text
    assert "http://***@h:9001/coco/1?api_key=***&token=***" in text
    assert "rtsp://***@cam/x failed" in text


def test_redaction_is_idempotent() -> None:
    for url, expected in CASES:
        assert redact(expected) == expected, url
