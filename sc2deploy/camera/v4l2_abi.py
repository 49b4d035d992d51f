"""The V4L2 structures and ioctl numbers sc2deploy uses, as ctypes (stdlib only).

Mirrors ``<linux/videodev2.h>``; ctypes lays the structures out by the C ABI of the Python
running, so one definition serves x86_64 and aarch64 (tests compare sizes, offsets and
numbers with a program compiled against the header, natively and for aarch64 under qemu).
The ioctl number encoding is the generic one (x86, ARM, RISC-V; not PowerPC, MIPS, SPARC).
"""

import ctypes as C

u8, u32, s32 = C.c_uint8, C.c_uint32, C.c_int32

CAP_VIDEO_CAPTURE = 0x00000001
CAP_STREAMING = 0x04000000
CAP_DEVICE_CAPS = 0x80000000
BUF_TYPE_VIDEO_CAPTURE = 1
MEMORY_MMAP = 1
FIELD_ANY = 0
BUF_FLAG_ERROR = 0x00000040


def fourcc(code: str) -> int:
    """'MJPG' -> the little-endian pixel format number V4L2 uses."""
    a, b, c, d = code.encode("ascii")
    return a | b << 8 | c << 16 | d << 24


def fourcc_name(value: int) -> str:
    return bytes((value >> s) & 0xFF for s in (0, 8, 16, 24)).decode("ascii", "replace")


class Capability(C.Structure):
    _fields_ = [("driver", C.c_char * 16), ("card", C.c_char * 32), ("bus_info", C.c_char * 32),
                ("version", u32), ("capabilities", u32), ("device_caps", u32),
                ("reserved", u32 * 3)]


class FmtDesc(C.Structure):
    _fields_ = [("index", u32), ("type", u32), ("flags", u32), ("description", C.c_char * 32),
                ("pixelformat", u32), ("mbus_code", u32), ("reserved", u32 * 3)]


class PixFormat(C.Structure):
    _fields_ = [(name, u32) for name in (
        "width", "height", "pixelformat", "field", "bytesperline", "sizeimage", "colorspace",
        "priv", "flags", "ycbcr_enc", "quantization", "xfer_func")]


class _FormatUnion(C.Union):
    # v4l2_window holds pointers: the union is pointer-aligned, as in the kernel header.
    _fields_ = [("pix", PixFormat), ("raw_data", u8 * 200), ("_align", C.c_void_p)]


class Format(C.Structure):
    _fields_ = [("type", u32), ("fmt", _FormatUnion)]


class RequestBuffers(C.Structure):
    _fields_ = [("count", u32), ("type", u32), ("memory", u32), ("capabilities", u32),
                ("flags", u8), ("reserved", u8 * 3)]


class TimeVal(C.Structure):
    _fields_ = [("tv_sec", C.c_long), ("tv_usec", C.c_long)]


class TimeCode(C.Structure):
    _fields_ = [("type", u32), ("flags", u32), ("frames", u8), ("seconds", u8),
                ("minutes", u8), ("hours", u8), ("userbits", u8 * 4)]


class _BufferM(C.Union):
    _fields_ = [("offset", u32), ("userptr", C.c_ulong), ("planes", C.c_void_p), ("fd", s32)]


class Buffer(C.Structure):
    _fields_ = [("index", u32), ("type", u32), ("bytesused", u32), ("flags", u32),
                ("field", u32), ("timestamp", TimeVal), ("timecode", TimeCode),
                ("sequence", u32), ("memory", u32), ("m", _BufferM), ("length", u32),
                ("reserved2", u32), ("request_fd", s32)]


def _ioc(direction: int, number: int, size: int) -> int:
    return direction << 30 | size << 16 | ord("V") << 8 | number


_W, _R = 1, 2
VIDIOC_QUERYCAP = _ioc(_R, 0, C.sizeof(Capability))
VIDIOC_ENUM_FMT = _ioc(_R | _W, 2, C.sizeof(FmtDesc))
VIDIOC_G_FMT = _ioc(_R | _W, 4, C.sizeof(Format))
VIDIOC_S_FMT = _ioc(_R | _W, 5, C.sizeof(Format))
VIDIOC_REQBUFS = _ioc(_R | _W, 8, C.sizeof(RequestBuffers))
VIDIOC_QUERYBUF = _ioc(_R | _W, 9, C.sizeof(Buffer))
VIDIOC_QBUF = _ioc(_R | _W, 15, C.sizeof(Buffer))
VIDIOC_DQBUF = _ioc(_R | _W, 17, C.sizeof(Buffer))
VIDIOC_STREAMON = _ioc(_W, 18, C.sizeof(C.c_int))
VIDIOC_STREAMOFF = _ioc(_W, 19, C.sizeof(C.c_int))

IOCTLS = {name: value for name, value in globals().items() if name.startswith("VIDIOC_")}
STRUCTS = {"v4l2_capability": Capability, "v4l2_fmtdesc": FmtDesc,
           "v4l2_pix_format": PixFormat, "v4l2_format": Format,
           "v4l2_requestbuffers": RequestBuffers, "v4l2_buffer": Buffer}


def layout() -> dict:
    """Sizes, chosen field offsets and ioctl numbers, as the ABI check prints them."""
    offsets = {"v4l2_format.fmt": Format.fmt.offset, "v4l2_buffer.timestamp":
               Buffer.timestamp.offset, "v4l2_buffer.sequence": Buffer.sequence.offset,
               "v4l2_buffer.m": Buffer.m.offset, "v4l2_buffer.length": Buffer.length.offset,
               "v4l2_fmtdesc.pixelformat": FmtDesc.pixelformat.offset}
    return {"sizeof": {k: C.sizeof(v) for k, v in STRUCTS.items()}, "offsetof": offsets,
            "ioctl": dict(IOCTLS)}


if __name__ == "__main__":
    import json

    print(json.dumps(layout(), sort_keys=True))
