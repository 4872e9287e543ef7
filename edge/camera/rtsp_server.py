#!/usr/bin/python3
"""Serve an H.264 mp4 over RTSP with GStreamer's RTSP server, like an IP camera.

A STANDALONE script: it imports only GStreamer (PyGObject) and the standard library, and is run with the
system Python that has ``gi`` (Debian: ``/usr/bin/python3`` with python3-gi, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-plugins-good and gstreamer1.0-plugins-bad). The project never imports it; use
:class:`edge.camera.server.RtspCameraServer` from Python code.

Usage::

    /usr/bin/python3 rtsp_server.py VIDEO.mp4 [--port 8554] [--mount cam1] [--loop] [--address 127.0.0.1]

Once listening it prints one line on stdout, ``ready rtsp://ADDRESS:PORT/MOUNT`` (``--port 0`` picks a free
port; the line gives the real one), then logs client events on stderr until SIGINT/SIGTERM.

Behaviour, chosen to look like a live camera:

* The media is **shared**: the file starts playing when the first client plays, later clients join the same
  stream at its current position, and when the last client leaves the media is torn down, so the next client
  starts from the beginning again.
* Client seeks are ignored: FFmpeg (so OpenCV) sends ``Range: npt=0-`` on PLAY, which would rewind the
  shared stream under every other client. The server publishes its clock and offset (RFC 7273
  ``a=ts-refclk``/``a=mediaclk`` in the SDP), and GstRTSPMedia treats such a stream as not seekable.
* ``--loop`` repeats the file forever with GStreamer segment seeks: at the end of the file a non-flushing
  segment seek back to 0 continues the same RTP stream with monotonic timestamps (no EOS, no flush, no
  reconnect). The loop is armed by one such seek when the stream starts playing, so the first frame or two
  are sent twice at the very start. Without ``--loop`` clients get an end of stream when the file ends.
* SPS/PPS are sent in-band before every keyframe (``rtph264pay config-interval=-1``), so clients can join at
  any keyframe.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

READY_PREFIX = "ready "
EXIT_BAD_INPUT = 2
"""Exit code: the video is missing or is not an H.264 mp4."""
EXIT_CANNOT_LISTEN = 3
"""Exit code: the address/port cannot be bound (for example the port is still in use)."""


def _log(message: str) -> None:
    print(f"rtsp_server: {message}", file=sys.stderr, flush=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    _log(f"error: {message}")
    sys.exit(code)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve an H.264 mp4 file over RTSP, like an IP camera.")
    parser.add_argument("video", type=Path, help="H.264 mp4 file to serve")
    parser.add_argument("--port", type=int, default=8554, help="TCP port of the RTSP server (0: pick one)")
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--mount", default="cam1", help="mount point, the URL path (default cam1)")
    parser.add_argument("--loop", action="store_true", help="repeat the video forever")
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="exit when the parent process dies (used when a test or the CLI starts the server)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0..65535, got {args.port}")
    args.mount = args.mount.strip("/")
    if not args.mount or any(c in args.mount for c in ' ?#"'):
        parser.error(f"--mount must be a non-empty URL path without spaces, ?, # or quotes: {args.mount!r}")
    return args


def _check_video(gst: Any, video: Path, timeout_s: float = 10.0) -> str | None:
    """Preroll ``video`` through the server's demuxer and parser; return the problem, or None if fine."""
    pipeline = gst.parse_launch("filesrc name=src ! qtdemux name=demux demux.video_0 ! h264parse ! fakesink")
    pipeline.get_by_name("src").set_property("location", str(video))
    try:
        pipeline.set_state(gst.State.PAUSED)
        message = pipeline.get_bus().timed_pop_filtered(
            int(timeout_s * gst.SECOND), gst.MessageType.ASYNC_DONE | gst.MessageType.ERROR
        )
        if message is None:
            return f"no H.264 video frame within {timeout_s:g} s"
        if message.type == gst.MessageType.ERROR:
            error, _debug = message.parse_error()
            return str(error.message)
        return None
    finally:
        pipeline.set_state(gst.State.NULL)


def main(argv: list[str] | None = None) -> None:
    """Run the server until SIGINT or SIGTERM."""
    args = _parse_args(argv)
    video = args.video.resolve()
    if not video.is_file():
        _fail(f"video file not found: {video}", EXIT_BAD_INPUT)

    try:
        import gi  # only the system Python has it: imported here to fail with a clear message

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GLib, Gst, GstRtspServer
    except (ImportError, ValueError) as exc:
        _fail(
            f"GStreamer RTSP server bindings are missing ({exc}); run this with the system python3 and "
            "install python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 (Debian/Ubuntu)"
        )

    Gst.init(None)
    missing = [
        name
        for name in ("filesrc", "qtdemux", "h264parse", "rtph264pay")
        if not Gst.ElementFactory.find(name)
    ]
    if missing:
        _fail(
            f"GStreamer elements missing: {', '.join(missing)}; install gstreamer1.0-plugins-good "
            "(qtdemux, rtph264pay) and gstreamer1.0-plugins-bad (h264parse)"
        )

    problem = _check_video(Gst, video)
    if problem:
        _fail(f"{video} cannot be served: {problem} (an H.264 mp4 is needed)", EXIT_BAD_INPUT)

    loop_video = bool(args.loop)

    class CameraMedia(GstRtspServer.RTSPMedia):  # type: ignore[misc]
        """A shared media that ignores client seeks and, with --loop, repeats the file seamlessly."""

        _looping = False  # instances are created by the factory in C: class defaults, no __init__
        _loops = 0

        def do_handle_message(self, message: Gst.Message) -> bool:
            if loop_video:
                pipeline = self.get_element().get_parent()
                if (
                    message.type == Gst.MessageType.STATE_CHANGED
                    and message.src == pipeline
                    and not self._looping
                ):
                    _old, new, _pending = message.parse_state_changed()
                    if new == Gst.State.PLAYING:
                        # Turn the running segment into a looping one. A non-flushing seek waits for the
                        # streaming thread, so do it off the main loop that serves the clients.
                        self._looping = True
                        threading.Thread(target=self._segment_seek, daemon=True).start()
                elif message.type == Gst.MessageType.SEGMENT_DONE:
                    self._loops += 1
                    _log(f"end of video, looping (loop {self._loops})")
                    threading.Thread(target=self._segment_seek, daemon=True).start()
            return GstRtspServer.RTSPMedia.do_handle_message(self, message)  # type: ignore[no-any-return]

        def _segment_seek(self) -> None:
            pay = self.get_element().get_by_name("pay0")
            # Non-flushing: the new segment's running time continues from the old one, so RTP timestamps
            # stay monotonic and clients see one unbroken stream.
            event = Gst.Event.new_seek(
                1.0,
                Gst.Format.TIME,
                Gst.SeekFlags.SEGMENT,
                Gst.SeekType.SET,
                0,
                Gst.SeekType.NONE,
                -1,
            )
            if pay is None or not pay.send_event(event):
                _log("warning: loop seek failed; the video will end")

    def on_media_configure(_factory: object, media: object) -> None:
        media.get_element().get_by_name("src").set_property("location", str(video))  # type: ignore[attr-defined]

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( filesrc name=src ! qtdemux name=demux demux.video_0 ! h264parse "
        "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    factory.set_shared(True)
    # Publishing the clock and offset (RFC 7273) makes GstRTSPMedia treat the stream as not seekable, so the
    # "Range: npt=0-" that FFmpeg sends on PLAY cannot rewind the shared stream under the other clients.
    factory.set_publish_clock_mode(GstRtspServer.RTSPPublishClockMode.CLOCK_AND_OFFSET)
    factory.set_media_gtype(CameraMedia)
    factory.connect("media-configure", on_media_configure)

    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    server.get_mount_points().add_factory(f"/{args.mount}", factory)

    def on_client_connected(_server: object, client: object) -> None:
        connection = client.get_connection()  # type: ignore[attr-defined]
        peer = connection.get_ip() if connection is not None else "?"
        _log(f"client connected from {peer}")
        client.connect("closed", lambda _c: _log(f"client from {peer} closed"))  # type: ignore[attr-defined]

    server.connect("client-connected", on_client_connected)

    if server.attach(None) == 0:
        _fail(
            f"could not listen on {args.address}:{args.port} (port in use or address not available)",
            EXIT_CANNOT_LISTEN,
        )
    port = server.get_bound_port()
    main_loop = GLib.MainLoop()

    def stop(*_args: object) -> bool:
        main_loop.quit()
        return False

    for signum in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, stop)

    # Expire the sessions of clients that vanished without a TEARDOWN (UDP clients, killed processes), so a
    # shared stream nobody watches is torn down; GstRTSPServer leaves this to the application.
    pool = server.get_session_pool()
    GLib.timeout_add_seconds(2, lambda: pool.cleanup() >= 0)
    if args.exit_with_parent:
        parent = os.getppid()

        def check_parent() -> bool:
            if os.getppid() != parent:
                _log("parent process died; exiting")
                main_loop.quit()
                return False
            return True

        GLib.timeout_add(500, check_parent)

    host = f"[{args.address}]" if ":" in args.address else args.address
    print(f"{READY_PREFIX}rtsp://{host}:{port}/{args.mount}", flush=True)
    _log(f"serving {video} at rtsp://{host}:{port}/{args.mount}{' (looping)' if loop_video else ''}")
    main_loop.run()
    _log("stopped")


if __name__ == "__main__":
    main()
