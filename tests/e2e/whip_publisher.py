"""A WHIP encoder built on aiortc, an independent WebRTC stack: publishes a
solid red picture and a 440 Hz tone into a room for a few seconds, then
ends its session with DELETE. Used by tests/e2e/whip.test.mjs.

usage: whip_publisher.py URL TOKEN SECONDS
"""

import asyncio
import fractions
import math
import sys

import aiohttp
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import VideoStreamTrack
from av import AudioFrame, VideoFrame

RATE = 48000
SAMPLES = 960  # 20 ms


class RedPicture(VideoStreamTrack):
    async def recv(self):
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=320, height=240, format="yuv420p")
        # Red in BT.601: Y 81, U 90, V 240.
        for plane, value in zip(frame.planes, (81, 90, 240)):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        return frame


class Tone(MediaStreamTrack):
    kind = "audio"

    def __init__(self, hz):
        super().__init__()
        self.hz = hz
        self.sent = 0
        self.start = None

    async def recv(self):
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
        due = self.start + self.sent / RATE
        await asyncio.sleep(max(0.0, due - loop.time()))
        pcm = bytearray()
        for i in range(SAMPLES):
            value = int(8000 * math.sin(2 * math.pi * self.hz * (self.sent + i) / RATE))
            pcm += value.to_bytes(2, "little", signed=True)
        frame = AudioFrame(format="s16", layout="mono", samples=SAMPLES)
        frame.planes[0].update(bytes(pcm))
        frame.sample_rate = RATE
        frame.pts = self.sent
        frame.time_base = fractions.Fraction(1, RATE)
        self.sent += SAMPLES
        return frame


async def main(url, token, seconds):
    pc = RTCPeerConnection()
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    def on_state():
        print(f"connection {pc.connectionState}", flush=True)
        if pc.connectionState == "connected":
            connected.set()

    pc.addTrack(Tone(440))
    pc.addTrack(RedPicture())
    # aiortc gathers every candidate before this returns: no trickle needed.
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=pc.localDescription.sdp, headers=headers) as reply:
            answer = await reply.text()
            if reply.status != 201:
                print(f"refused {reply.status}: {answer}", flush=True)
                sys.exit(1)
            location = reply.headers["Location"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.wait_for(connected.wait(), 15)
        print("publishing", flush=True)
        await asyncio.sleep(seconds)
        async with http.delete(str(reply.url.join(aiohttp.client.URL(location)))) as ended:
            print(f"ended {ended.status}", flush=True)
    await pc.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
