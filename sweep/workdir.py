"""Where a trial runs: the user's folder as it is, seen through a copy-on-write layer that
belongs to the trial's run. Stdlib only (ctypes for the Linux calls); both launchers call
``enter`` in the child, after fork and before the script starts.

The promise: no trial changes or deletes a file in the user's folder; relative paths, in
flags and in the script's own defaults, resolve as when the user runs the script from the
flags file's folder; parallel trials never share an output file; no data is copied.

What was weighed:

- Symlinks to the folder's entries in ``<run>/work`` (what this replaced; Guild AI links a
  run's resources the same way): ``open("model.pt", "w")`` follows the link and overwrites
  the user's file, a linked ``checkpoints/`` is shared by parallel trials, and ``../data``
  resolves from the run, not from the folder.
- Hydra (before 1.2) changes into a fresh output directory and gives scripts
  ``to_absolute_path`` to get back: relative paths break unless the script is changed.
  MLflow projects and Sacred run in the folder itself: nothing is protected.
- A mirror tree (directories recreated, small files copied, large ones linked): a link
  still lets a write reach the original, and ``..`` leads into the run directory.
- Overlayfs in a private mount namespace, mounted at the folder's own path (chosen): the
  lower layer is the folder, the upper layer is ``<run>/work``. Nothing is copied to start;
  a file the trial changes is copied into its upper layer first, a deletion is a whiteout
  there, a new file lands there. Because the overlay sits at the folder's own path, the
  trial's cwd is the folder and ``../data`` resolves exactly as for the user. The mount
  exists only in the trial's namespace (and its children's): nobody else sees it, and it
  goes away with them. ``<run>/work`` ends up holding exactly what the trial wrote,
  changed or deleted. Root needs CLONE_NEWNS; anyone else a user namespace (Linux 5.11+
  lets it mount overlayfs), mapping the user to itself so files keep their owners.

The protected folder is the flags file's folder, or the folder that holds both it and the
script when the script lives elsewhere (``script: ../train.py``). Paths outside it (``../``
above it, absolute paths) are the script's own business, as when the user runs it. Inside
the trial's view: a filesystem mounted below the folder (a dataset disk) is shown read-only,
since an overlay does not reach into other mounts; a runs directory inside the folder shows
only this trial's own run, at its own path (so ``SWEEP_RUN_DIR`` works), and a script that
writes ``runs/`` (TensorBoard's default) writes into ``<run>/work/runs/``.

Where namespaces are not allowed (a container without CAP_SYS_ADMIN, a kernel without
unprivileged user namespaces), the sweep says so once and each trial runs in a mirror of
the folder at ``<run>/work/<folder name>``: directories recreated, files up to 1 MiB copied
(64 MiB in all), other files symlinked, the entries beside the folder linked beside the
mirror (so ``../data`` resolves; ``../..`` does not), the script run from its copy. A
Landlock ruleset (Linux 5.13+, no privileges needed) refuses the trial any write under the
user's folder, so writing into a linked file fails with "Permission denied" instead of
changing the original (chmod could not do this: root ignores it). Without Landlock the
large files are left out of the mirror, and the note says so. ``workdir: inplace`` in the
flags file runs every trial in the folder itself: nothing is protected and parallel trials
share files.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import select
import shutil
import signal
import stat
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep.rundir import WORK_DIR as WORK  # the upper layer, or the mirror: what the trial wrote

SETTINGS = ("isolated", "inplace")  # the flags file's ``workdir:``
SCRATCH = ".overlay"  # overlayfs's own work directory (same filesystem as the upper layer)
COPY_MAX = 1 << 20  # a mirror copies files up to this size...
COPY_BUDGET = 64 << 20  # ...and this much in all; the rest are linked (or left out)
SETUP_FAILED = 1  # the exit status of a trial whose working directory could not be set up
PROBE_TIMEOUT_S = 60.0

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME = 1 << 14, 1 << 18, 1 << 21
# A read-only bind must keep the flags a user namespace locks (statvfs -> mount flags). The
# ST_ names are Linux's own: elsewhere this module must still import.
KEEP_FLAGS = tuple((getattr(os, st, 0), ms) for st, ms in (
    ("ST_NOSUID", MS_NOSUID), ("ST_NODEV", MS_NODEV), ("ST_NOEXEC", MS_NOEXEC), ("ST_NOATIME", MS_NOATIME),
    ("ST_NODIRATIME", MS_NODIRATIME), ("ST_RELATIME", MS_RELATIME)))

# Landlock (include/uapi/linux/landlock.h): the same syscall numbers on every architecture.
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
PR_SET_NO_NEW_PRIVS = 38
LL_WRITE_FILE, LL_TRUNCATE, LL_REFER = 1 << 1, 1 << 14, 1 << 13
LL_WRITES = LL_WRITE_FILE | sum(1 << b for b in range(4, 13))  # remove and make anything


@dataclass(frozen=True)
class Place:
    """Decided once per sweep: how trials run and what is protected.

    ``how`` is ``overlay``, ``mirror`` or ``inplace``; ``folder`` the protected tree; ``cwd``
    the flags file's folder (inside ``folder``); ``runs`` the runs directory; ``mounts`` the
    filesystems mounted below ``folder``; ``guard`` whether Landlock keeps a mirror's trial
    out of ``folder``; ``note`` what the sweep says once when the safe mode was not had."""

    how: str
    folder: Path
    cwd: Path
    runs: Path
    mounts: tuple[str, ...] = ()
    guard: bool = False
    note: str | None = None

    def within(self, path: Path) -> Path | None:
        """``path`` relative to the protected folder, or None outside it."""
        try:
            return path.relative_to(self.folder)
        except ValueError:
            return None


# ---------------------------------------------------------------- in the sweep


def place(root: Path, script: Path | None, runs_dir: Path, setting: str = "isolated") -> Place:
    """How this sweep's trials run. Probes (once per process and folder) whether an overlay
    can be mounted here, in a child process; says why not in ``note``."""
    if setting == "inplace":
        cwd = root.resolve()
        return Place("inplace", cwd, cwd, runs_dir.resolve())
    overlay = _overlay_place(root, script, runs_dir)
    reason = _probe(overlay)
    if reason is None:
        return overlay
    folder, cwd, runs, mounts = overlay.folder, overlay.cwd, overlay.runs, overlay.mounts
    guard = landlock_abi() > 0
    if guard:
        note = (f"cannot give trials a private copy-on-write view of {folder} ({reason}); each runs in "
                "a mirror of it in its run directory, and Landlock refuses any write into your files")
    else:
        note = (f"cannot give trials a private copy-on-write view of {folder} ({reason}), and Landlock "
                f"is not available; each runs in a copy of its files up to {COPY_MAX >> 20} MiB "
                f"({COPY_BUDGET >> 20} MiB in all): larger files are left out (give them as absolute "
                "paths, or set 'workdir: inplace' to run in the folder itself)")
    return Place("mirror", folder, cwd, runs, mounts, guard, note)


def probe_ahead(root: Path, script: Path | None, runs_dir: Path, setting: str = "isolated") -> None:
    """Start ``place``'s probe now, in a child that runs while this process goes on (the sweep
    imports optuna meanwhile): ``place`` then only collects its verdict. Its folder is removed
    by ``settle`` (the driver calls it once the first trial runs: a few rmdirs, milliseconds
    each on a busy disk), which also collects a probe ``place`` never asked for."""
    if setting == "inplace" or not sys.platform.startswith("linux"):
        return
    where = _overlay_place(root, script, runs_dir)
    key = (where.folder, where.runs)
    if key not in _probed and key not in _probing:
        _probing[key] = _Probing.start(where)


def settle() -> None:
    """Remove the folders of the probes started ahead, and collect those no ``place`` took
    (the sweep stopped before its first trial): their child reaped."""
    while _probing:
        key, probing = _probing.popitem()
        _probed[key] = probing.finish()
        _judged.append(probing)
    while _judged:
        _judged.pop().remove()


def _overlay_place(root: Path, script: Path | None, runs_dir: Path) -> Place:
    """The overlay ``place`` probes: the folder holding the flags file and the script."""
    cwd = root.resolve()
    folder = cwd
    if script is not None:
        common = Path(os.path.commonpath([cwd, script.parent.resolve()]))
        folder = common if common != Path(common.anchor) else cwd
    return Place("overlay", folder, cwd, runs_dir.resolve(), tuple(_mounts_below(folder)))


def prepare(where: Place, stage: Path, run: Path) -> None:
    """Make the staged run's ``work/``: the overlay's upper layer, or the mirror. ``run`` is
    the path the stage is published at (the trial's mounts name it)."""
    run = run.resolve()
    work = stage / WORK
    work.mkdir()
    if where.how == "overlay":
        (stage / SCRATCH).mkdir()
        inner = where.within(run)
        if inner is not None and where.within(where.runs) != Path("."):
            # Where the trial's view of the runs directory shows its own run: see _binds.
            (work / run.relative_to(where.folder)).mkdir(parents=True)
    elif where.how == "mirror":
        _mirror(where, work)


def setup(where: Place, run: Path) -> dict[str, Any]:
    """What the child needs to enter its working directory (JSON, for the warm launcher)."""
    run = run.resolve()
    info: dict[str, Any] = {"how": where.how, "cwd": str(cwd(where, run))}
    if where.how == "overlay":
        info.update(folder=str(where.folder), upper=str(run / WORK), scratch=str(run / SCRATCH),
                    readonly=list(where.mounts), binds=_binds(where, run), tidy=leftovers(where, run))
    elif where.how == "mirror" and where.guard:
        info.update(guard=str(where.folder), run=str(run))
    return info


def cwd(where: Place, run: Path) -> Path:
    """The trial's working directory: the flags file's folder, or its place in the mirror."""
    if where.how == "mirror":
        return mirrored(where, run) / where.cwd.relative_to(where.folder)
    return where.cwd


def program(where: Place, run: Path, script: Path | None) -> Path | None:
    """The script to run: in a mirror, its copy there (so that paths relative to the
    script's own file, and the modules beside it, are the mirror's too)."""
    if script is None or where.how != "mirror":
        return script
    inner = where.within(script.resolve())
    return script if inner is None else mirrored(where, run) / inner


def mirrored(where: Place, run: Path) -> Path:
    """Where a mirror puts the folder: ``work/<its name>``, beside links to the entries of
    the folder's parent, so that ``../data`` still resolves."""
    return run.resolve() / WORK / where.folder.name


def record(where: Place, run: Path) -> dict[str, str]:
    """run.json's account of where the trial ran and where its files went."""
    return {"mode": where.how, "folder": str(where.folder), "cwd": str(cwd(where, run))}


def cleanup(where: Place, run: Path) -> None:
    """Once the trial has ended: remove the overlay's scratch directory, and the empty
    folders that held the trial's view of its own run (see ``_binds``)."""
    tidy(leftovers(where, run))


def leftovers(where: Place, run: Path) -> dict[str, Any]:
    """What ``tidy`` removes once the trial has ended (JSON, for the launcher's server)."""
    run = run.resolve()
    empty = []
    inner = where.within(run)
    if where.how == "overlay" and inner is not None and where.within(where.runs) != Path("."):
        empty = [str(run / WORK / part) for part in [inner, *inner.parents][:-1]]  # innermost first
    return {"scratch": str(run / SCRATCH), "empty": empty}


def tidy(left: dict[str, Any]) -> None:
    """Remove the scratch directory, then the empty folders up to the first that is not."""
    scratch = Path(left["scratch"])
    if scratch.is_dir() and not scratch.is_symlink():
        for sub in scratch.iterdir():  # the kernel makes its own work/work with mode 000
            try:
                if sub.is_dir() and not sub.is_symlink():
                    sub.chmod(0o700)
            except OSError:
                pass
        shutil.rmtree(scratch, ignore_errors=True)
    for folder in left["empty"]:
        try:
            os.rmdir(folder)
        except OSError:
            break


def _binds(where: Place, run: Path) -> list[list[str]]:
    """(source, target) bind mounts made over the overlay, sources opened before it hides
    them. A runs directory inside the folder would show the sweep's other runs (and this
    run's own upper layer, which overlayfs refuses to look into): the trial sees instead a
    fresh ``runs`` of its own in its upper layer, with its real run directory bound at its
    real path inside it."""
    if where.within(run) is None:
        return []
    binds = []
    runs_inside = where.within(where.runs)
    if runs_inside is not None and runs_inside != Path("."):
        binds.append([str(run / WORK / runs_inside), str(where.runs)])
    binds.append([str(run), str(run)])
    return binds


def _mounts_below(folder: Path) -> list[str]:
    """Mount points strictly inside ``folder``, parents first."""
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return []
    found = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        if Path(point).is_relative_to(folder) and Path(point) != folder:
            found.add(point)
    return sorted(found, key=lambda p: (p.count("/"), p))


_probed: dict[tuple[Path, Path], str | None] = {}


def _probe(where: Place) -> str | None:
    """Mount an overlay exactly as a trial would, in a short-lived child, and check that a
    write lands in the upper layer and not in the folder. None when it works, else why not."""
    key = (where.folder, where.runs)
    if key in _probed:
        return _probed[key]
    if not sys.platform.startswith("linux"):
        _probed[key] = reason = "not Linux"
        return reason
    ahead = _probing.pop(key, None)
    probing = ahead or _Probing.start(where)
    _probed[key] = reason = probing.finish()
    if ahead is None:
        probing.remove()
    else:  # started by probe_ahead: settle removes it, off the way to the first trial
        _judged.append(ahead)
    return reason


@dataclass
class _Probing:
    """A probe's child, started; ``finish`` waits for it and judges, ``remove`` tidies up."""

    where: Place
    run: Path
    name: str
    child: tuple[int, int] | None = None  # its pid and the read end of its stderr
    failed: str | None = None  # why it could not be started

    @classmethod
    def start(cls, where: Place) -> _Probing:
        probing = cls(where, where.runs / ".sweep" / f"{PROBE_PREFIX}{os.getpid()}", f".sweep-probe-{os.getpid()}")
        try:
            for left in probing.run.parent.glob(f"{PROBE_PREFIX}*"):  # by sweeps killed before it was removed
                if left != probing.run and _gone(left.name.removeprefix(PROBE_PREFIX)):
                    cls(where, left, probing.name).remove()
            shutil.rmtree(probing.run, ignore_errors=True)
            probing.run.mkdir(parents=True)
            prepare(where, probing.run, probing.run)
            probing.child = _probe_child(setup(where, probing.run), probing.name)
        except OSError as exc:
            probing.failed = str(exc)
        return probing

    def finish(self) -> str | None:
        """The verdict: None when the overlay works, else why not (the child reaped)."""
        where, run, name = self.where, self.run, self.name
        reason = self.failed
        try:
            if self.child is not None:
                code, said = _probe_wait(*self.child)
                self.child = None
                if code != 0:
                    lines = said.strip().splitlines() or [f"exit status {code}"]
                    reason = lines[-1].removeprefix("sweep: ")
                elif (where.cwd / name).exists() or \
                        not (run / WORK / where.cwd.relative_to(where.folder) / name).exists():
                    reason = "a write in the overlay did not land in its upper layer"
        except OSError as exc:
            reason = str(exc)
        finally:
            try:
                (where.cwd / name).unlink()  # only if the probe failed in the worst way
            except OSError:
                pass
        return reason

    def remove(self) -> None:
        cleanup(self.where, self.run)
        shutil.rmtree(self.run, ignore_errors=True)


def _gone(pid: str) -> bool:
    """Whether no process has this pid (a folder's owner); False when unsure."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (ValueError, OSError):
        return False
    return False


PROBE_PREFIX = "workdir-probe-"  # runs/.sweep/workdir-probe-<the sweep's pid>
_probing: dict[tuple[Path, Path], _Probing] = {}  # started ahead, not yet collected
_judged: list[_Probing] = []  # started ahead and collected: their folders still to remove


def _probe_child(info: dict[str, Any], name: str) -> tuple[int, int]:
    """Start ``_probe_main`` in a forked child (the sweep is single-threaded here): no fresh
    interpreter and its imports, a few milliseconds instead of a fifth of a second of the
    sweep's start. Its pid, and the read end of its stderr."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only os-level calls, and out through os._exit
        code = 1
        try:
            os.close(read)
            os.dup2(write, 2)
            code = _probe_main([json.dumps(info), name])
        except BaseException as exc:  # noqa: BLE001  (anything: say it, exit 1)
            try:
                os.write(2, f"sweep: {exc}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


def _probe_wait(pid: int, read: int) -> tuple[int, str]:
    """The probe child's exit status, and what it wrote to stderr (it is killed if it hangs)."""
    said = b""
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    try:
        while time.monotonic() < deadline and select.select([read], [], [], deadline - time.monotonic())[0]:
            chunk = os.read(read, 4096)
            if not chunk:
                break
            said += chunk
        else:
            os.kill(pid, signal.SIGKILL)
            said += b"sweep: the probe did not finish in time\n"
    finally:
        os.close(read)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), said.decode(errors="replace")


def _mirror(where: Place, work: Path) -> None:
    """Recreate the folder's directories in ``work``; copy small files, link the others
    (only when Landlock will refuse writes through the links); skip the runs directory.
    The entries beside the folder are linked beside the mirror."""
    for entry in _entries(where.folder.parent):
        path = Path(entry.path)
        if entry.name != where.folder.name and not where.runs.is_relative_to(path.resolve()):
            (work / entry.name).symlink_to(path)
    budget = COPY_BUDGET
    for top, dirs, files in os.walk(where.folder):
        here = Path(top)
        dest = work / where.folder.name / here.relative_to(where.folder)
        dest.mkdir(exist_ok=True)
        for name in list(dirs):
            path = here / name
            if path.is_symlink() or path.resolve() == where.runs:
                dirs.remove(name)
                if path.is_symlink():
                    files.append(name)
        for name in files:
            path = here / name
            try:
                st = path.lstat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_size <= min(COPY_MAX, budget):
                try:
                    shutil.copy2(path, dest / name)
                except OSError:
                    continue  # unreadable: the trial could not read it either
                budget -= st.st_size
            elif where.guard and (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                (dest / name).symlink_to(path)


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(folder))
    except OSError:
        return []


# ---------------------------------------------------------------- in the trial's process


def enter(info: dict[str, Any] | None) -> None:
    """Set up this process's working directory as ``setup`` described it, then chdir there.
    Called in the trial's process after fork, before the script. A trial that cannot be
    protected never runs: it prints why and exits with status 1."""
    if not info:
        return
    try:
        if info["how"] == "overlay":
            _overlay(info)
        elif info.get("guard"):
            _landlock(Path(info["guard"]), Path(info["run"]))
        os.chdir(info["cwd"])
    except OSError as exc:
        os.write(2, f"sweep: could not set up the trial's working directory: {exc}\n".encode())
        os._exit(SETUP_FAILED)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


def _mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    enc = [None if s is None else os.fsencode(s) for s in (source, target, fstype, data)]
    _check(libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {target}")


def _unshare(libc: ctypes.CDLL) -> bool:
    """A private mount namespace; through a user namespace unless we are root. Returns True
    when in a user namespace (overlayfs then keeps its metadata in user.* xattrs)."""
    if os.geteuid() == 0:
        try:
            _check(libc.unshare(CLONE_NEWNS), "unshare")
            return False
        except OSError as exc:
            if exc.errno != errno.EPERM:  # root without CAP_SYS_ADMIN may still have user namespaces
                raise
    uid, gid = os.geteuid(), os.getegid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)
    return True


def _escape(path: str) -> str:
    """A path as a value in overlayfs's options (commas separate options, colons layers)."""
    return path.replace("\\", "\\\\").replace(",", "\\,").replace(":", "\\:")


def _overlay(info: dict[str, Any]) -> None:
    libc = _libc()
    folder = info["folder"]
    userns = _unshare(libc)
    # Private first: otherwise the mounts below would propagate to everyone's namespace.
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    # Opened in this namespace (a bind's source must be one of its mounts) and before the
    # overlay hides them (the paths would then lead into it).
    held = [(os.open(p, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), p, True) for p in info["readonly"]]
    held += [(os.open(src, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), dst, False) for src, dst in info["binds"]]
    try:
        options = (f"lowerdir={_escape(folder)},upperdir={_escape(info['upper'])},"
                   f"workdir={_escape(info['scratch'])}")
        try:
            _mount(libc, "overlay", folder, "overlay", 0, options + (",userxattr" if userns else ""))
        except OSError as exc:
            if not userns or exc.errno != errno.EINVAL:
                raise
            _mount(libc, "overlay", folder, "overlay", 0, options)  # a kernel before userxattr
        for fd, target, readonly in held:
            _mount(libc, f"/proc/self/fd/{fd}", target, None, MS_BIND)
            if readonly:
                kept = os.statvfs(target).f_flag
                flags = sum(ms for st, ms in KEEP_FLAGS if kept & st)
                _mount(libc, None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | flags)
    finally:
        for fd, _, _ in held:
            os.close(fd)
    # The kernel makes its work/work with mode 000: left so, the run could not be removed by
    # a user who is not root.
    os.chmod(os.path.join(info["scratch"], "work"), 0o700)


def landlock_abi() -> int:
    """Landlock's ABI version, or 0 where there is none."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        return max(0, _libc().syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1)))
    except (OSError, AttributeError):
        return 0


def _landlock(folder: Path, run: Path) -> None:
    """Refuse this process (and what it starts) every write under ``folder`` except in
    ``run``. Landlock only grants, so everything else is granted: each entry beside the
    path from / down to ``folder``. Creating an entry directly in a folder above ``folder``
    is refused too."""
    libc = _libc()
    abi = landlock_abi()
    handled = LL_WRITES | (LL_REFER if abi >= 2 else 0) | (LL_TRUNCATE if abi >= 3 else 0)
    attr = struct.pack("=Q", handled)
    ruleset = _check(libc.syscall(SYS_CREATE_RULESET, attr, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0)),
                     "landlock_create_ruleset")
    try:
        grants = [run]
        chain = [*reversed(folder.parents), folder]  # "/" ... folder
        for above, below in zip(chain[:-1], chain[1:], strict=True):
            try:
                grants += [Path(e.path) for e in os.scandir(above) if e.name != below.name]
            except OSError:
                continue
        for path in grants:
            _grant(libc, ruleset, path, handled)
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl")
        _check(libc.syscall(SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def _grant(libc: ctypes.CDLL, ruleset: int, path: Path, handled: int) -> None:
    """Allow every handled write beneath ``path`` (a directory) or to it (a file). A path
    that cannot be granted stays refused: the safe side."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISLNK(mode):
            return  # a link's target has its own place among the grants
        rights = handled if stat.S_ISDIR(mode) else handled & (LL_WRITE_FILE | LL_TRUNCATE)
        rule = struct.pack("=Qi", rights, fd)
        libc.syscall(SYS_ADD_RULE, ruleset, 1, rule, ctypes.c_uint32(0))
    finally:
        os.close(fd)


def _probe_main(argv: list[str]) -> int:
    """``python -m sweep.workdir SETUP NAME``: enter the working directory SETUP describes
    and write NAME there (see ``_probe``)."""
    enter(json.loads(argv[0]))
    with open(argv[1], "w") as fh:
        fh.write("probe\n")
    return 0


if __name__ == "__main__":
    sys.exit(_probe_main(sys.argv[1:]))
