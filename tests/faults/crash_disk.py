"""A disk that can lose power: an ext4 image on a loop device, and the image a crash leaves.

Contract:

- ``CrashDisk(image, mountpoint)`` makes an ext4 file system in ``image`` (a sparse file),
  attaches it to a free loop device and mounts it at ``mountpoint``. ``close()`` unmounts and
  detaches it and deletes the image, whatever happened.
- ``power_loss()`` is the crash: call it once the process writing there is dead. It copies the
  image file *as the loop device has written it* (never syncing the mounted file system first),
  throws the mounted file system away with everything still in its page cache, and mounts the
  copy in its place. Mounting replays ext4's journal, as the boot after a power cut would.

Why this is a power cut for the writer and not just a kill: a write on the mounted file system
lands in that file system's page cache and reaches the loop device (and so the image file) only
when the kernel writes it back: at ``fsync``/``fdatasync`` (which also flush the metadata
needed to read the data back), at ext4's periodic journal commit (every ``COMMIT_SECONDS`` here), at
another file's ``fsync`` (ext4 commits the whole running transaction, metadata included, so
a grown size may survive without its bytes: the tail then reads as zeros), or under memory
pressure. What the copy holds is therefore exactly what the kernel had made durable at the
crash, plus any dirty data it happened to write back early (which a real power cut may also
keep). The guarantees the agent relies on are the kernel's, tested as such: after ``fsync(fd)``
returns the file's data and size are on the device; a new name, a rename or an unlink is on the
device only after ``fsync`` of its directory; SQLite (WAL, ``synchronous=FULL``) relies on the
same two calls. What this does not emulate: a device that reorders or tears writes it had not
been told to flush (the loop device applies them in order), which ext4's journal checksums and
SQLite's WAL checksums are there for.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

IMAGE_MB = 64
# ext4's periodic journal commit (default 5 s): longer, so that what survives a crash is what
# fsync made durable, not what a timer happened to commit (the stricter case for the agent)
COMMIT_SECONDS = 60


def _run(*argv: str) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


class CrashDisk:
    """An ext4 image on a loop device whose unsynced writes a crash can throw away."""

    def __init__(self, image: Path, mountpoint: Path) -> None:
        self.image = image
        self.mountpoint = mountpoint
        self.device: str | None = None
        self.crashes = 0

    def open(self) -> CrashDisk:
        with self.image.open("wb") as out:
            out.truncate(IMAGE_MB * 2**20)
        _run("mkfs.ext4", "-q", "-F", str(self.image))
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self._attach(self.image)
        return self

    def _attach(self, image: Path) -> None:
        self.device = _run("losetup", "--find", "--show", str(image))
        _run("mount", "-t", "ext4", "-o", f"commit={COMMIT_SECONDS}", self.device,
             str(self.mountpoint))  # fmt: skip

    def _detach(self) -> None:
        if self.device is None:
            return
        device, self.device = self.device, None
        subprocess.run(["umount", str(self.mountpoint)], capture_output=True, check=False)
        subprocess.run(["losetup", "-d", device], capture_output=True, check=False)

    def sync(self) -> None:
        """Make everything written so far durable (set-up that an installer would have synced)."""
        _run("sync", "-f", str(self.mountpoint))

    def power_loss(self) -> None:
        """The crash: keep what the device holds now, lose the page cache, mount the result."""
        assert self.device is not None, "CrashDisk.open() first"
        self.crashes += 1
        survivor = self.image.with_name(f"{self.image.stem}-crash{self.crashes}.img")
        # the image file as the loop device wrote it; the mounted file system is NOT synced first
        _run("cp", "--sparse=always", str(self.image), str(survivor))
        self._detach()  # its unmount writes the page cache back, into the image we discard
        self.image.unlink()
        self.image = survivor
        self._attach(survivor)

    def close(self) -> None:
        self._detach()
        self.image.unlink(missing_ok=True)


def loop_devices_usable(scratch: Path) -> str | None:
    """None when ext4 on a loop device can be made and mounted here, else why not."""
    for tool in ("mkfs.ext4", "losetup", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    disk = CrashDisk(scratch / "probe.img", scratch / "probe")
    try:
        disk.open()
    except (RuntimeError, OSError) as exc:
        return f"cannot mount ext4 on a loop device (needs root and /dev/loop*): {exc}"
    finally:
        disk.close()
    return None
