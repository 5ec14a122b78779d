// Creating, mapping and removing the POSIX shared-memory object, safely.
//
// The daemon usually runs as root, and /dev/shm is world-writable (sticky). A name there may
// already exist, put there by anyone. We must never write into a file that is not ours: a
// symlink could point at /etc/shadow, another user's region could belong to something else.
// So we create with O_CREAT|O_EXCL|O_NOFOLLOW, and reuse an existing object only when fstat on
// the descriptor we actually opened shows a regular file, owned by our effective uid, with one
// link: that is a region we left behind when we crashed.
//
// A client may open the region the instant its name exists: Shairport Sync 5.3 polls for a new
// client's region right after asking for it, and maps and reads it at once. So a new region is
// built under a temporary name and given its own only when it is complete (placeRegion, after the
// writer has initialised it), as glibc's sem_open does: link(2) to the name, which fails rather
// than replace anything there, then remove the temporary name. Until then a client finds no
// region, never an empty file (a SIGBUS when read) or a version of 0.

import { linkSync, lstatSync } from "node:fs";
import { checkShmName } from "../rules/shm-name.ts";
import { EEXIST, EINVAL, ELOOP, ENOENT, SysError } from "../sys/errors.ts";
import { O_CLOEXEC, O_CREAT, O_EXCL, O_RDWR, PROT_READ, PROT_WRITE, MAP_SHARED, S_IFMT, S_IFREG, oNoFollow, type Arch } from "../sys/linux.ts";
import { close, fchmod, fstat, ftruncate, geteuid, mmap, munmap, posixFallocate, shmOpen, shmUnlink, tryLockExclusive } from "../sys/posix.ts";
import type { Address } from "../sys/libc.ts";

/** glibc's shm_open creates "/name" as this directory's entry "name". */
export const SHM_DIRECTORY = "/dev/shm";

export interface MappedRegion {
  /** The shm_open name, "/nqptp". */
  name: string;
  /** Its file, "/dev/shm/nqptp". */
  path: string;
  fd: number;
  address: Address;
  size: number;
  /** Inode of the object we mapped; close() unlinks the name only while it still refers to it. */
  ino: bigint;
  /** True when we reused a stale region of ours instead of creating a new one. */
  reusedStale: boolean;
  /** The temporary shm_open name of a new region until placeRegion gives it `name`; else null. */
  pendingName: string | null;
}

/** The one name rule (rules/shm-name.ts), as the error shm_open would give. */
function requireValidName(name: string): void {
  const reason = checkShmName(name);
  if (reason !== null) {
    throw new SysError("shm_open", EINVAL, { message: `invalid shared-memory name ${JSON.stringify(name)}: it ${reason}` });
  }
}

function refuse(errno: number, path: string, why: string): never {
  throw new SysError("shm_open", errno, { message: `${path} ${why}; remove it or choose --shm-name` });
}

/**
 * Open the existing object read-write without following a symlink, and accept it only if it is
 * a stale region of ours. Returns null if it disappeared in the meantime.
 */
function openOwnStaleRegion(name: string, path: string, arch: Arch): number | null {
  let fd: number;
  try {
    fd = shmOpen(name, O_RDWR | O_CLOEXEC | oNoFollow(arch), 0);
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    if (e.errno === ENOENT) return null;
    if (e.errno === ELOOP) refuse(ELOOP, path, "is a symbolic link (refusing to follow it)");
    // Say what is in the way. (glibc's shm_open reports a directory as EINVAL, not EISDIR.)
    const existing = lstatSync(path, { throwIfNoEntry: false });
    if (existing?.isDirectory()) refuse(e.errno, path, "exists and is a directory");
    if (existing !== undefined && existing.uid !== geteuid()) refuse(e.errno, path, `exists and belongs to uid ${existing.uid}`);
    refuse(e.errno, path, `exists and cannot be opened (${e.message})`);
  }
  try {
    const status = fstat(fd);
    const euid = geteuid();
    if ((status.mode & S_IFMT) !== S_IFREG) refuse(EEXIST, path, `exists and is not a regular file (mode 0${status.mode.toString(8)})`);
    if (status.uid !== euid) refuse(EEXIST, path, `exists and belongs to uid ${status.uid}`);
    if (status.nlink !== 1) refuse(EEXIST, path, `exists and has ${status.nlink} hard links`);
    // A region of ours is stale only if no running nqptp holds it: each holds a lock on every
    // region it serves, which the kernel drops when that process ends, however it ends.
    if (!tryLockExclusive(fd)) refuse(EEXIST, path, "is in use by another running nqptp");
  } catch (e) {
    close(fd);
    throw e;
  }
  return fd;
}

let temporaryCounter = 0;

/** A name for a region being built: hidden, unique to this process, beside where it will go. */
function temporaryName(name: string): string {
  return `/.${name.slice(1)}.new-${process.pid}-${++temporaryCounter}`;
}

/**
 * Create (or reclaim our own stale) shared-memory object `name`, size it, set its mode exactly
 * (the umask must not narrow 0666) and map it read-write, shared. The contents are not yet
 * initialised: the caller zeroes and fills them, then calls placeRegion, which gives a new
 * region its name. (A stale region of ours is reused where it is: no client of a crashed
 * daemon's region is helped by waiting.)
 */
export function createRegion(name: string, size: number, mode: number, arch: Arch): MappedRegion {
  requireValidName(name);
  const path = SHM_DIRECTORY + name;
  let fd: number | null = null;
  let pendingName: string | null = null;
  if (lstatSync(path, { throwIfNoEntry: false }) !== undefined) fd = openOwnStaleRegion(name, path, arch);
  if (fd === null) {
    // Nothing there (or it vanished as we looked). A fresh, unique name cannot exist already.
    pendingName = temporaryName(name);
    fd = shmOpen(pendingName, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | oNoFollow(arch), mode);
    // Held for as long as we serve the region (see openOwnStaleRegion); the name is ours alone,
    // so nobody else can hold it.
    if (!tryLockExclusive(fd)) {
      close(fd);
      shmUnlink(pendingName);
      throw new SysError("flock", EEXIST, { message: `${SHM_DIRECTORY}${pendingName} is locked by another process` });
    }
  }

  try {
    ftruncate(fd, size);
    // /dev/shm is a size-limited tmpfs (64 MB in a Docker container): reserve the pages now, so
    // that a full one is an error here rather than a SIGBUS at our first write.
    posixFallocate(fd, size);
    fchmod(fd, mode);
    const ino = fstat(fd).ino;
    const address = mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
    return { name, path, fd, address, size, ino, reusedStale: pendingName === null, pendingName };
  } catch (e) {
    close(fd);
    if (pendingName !== null) shmUnlink(pendingName);
    throw e;
  }
}

/**
 * Gives a new region its name, once it is initialised: from now on clients find it, complete.
 * Fails, leaving the region unnamed, if something took the name meanwhile (another nqptp
 * starting with the same name). Nothing to do for a reclaimed stale region.
 */
export function placeRegion(region: MappedRegion): void {
  const pending = region.pendingName;
  if (pending === null) return;
  try {
    linkSync(SHM_DIRECTORY + pending, region.path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EEXIST") {
      throw new SysError("link", EEXIST, {
        message: `${region.path} appeared while nqptp was creating it; is another nqptp starting with that name?`,
      });
    }
    throw new SysError("link", Math.abs((e as NodeJS.ErrnoException).errno ?? 0), {
      subject: `${JSON.stringify(SHM_DIRECTORY + pending)}, ${JSON.stringify(region.path)}`,
      description: (e as Error).message,
    });
  }
  shmUnlink(pending);
  region.pendingName = null;
}

/**
 * Unmap, close, and remove the name if it still refers to the object we mapped (another daemon
 * may have replaced it since). Attempts every step, then reports the first failure.
 */
export function destroyRegion(region: MappedRegion): void {
  const failures: unknown[] = [];
  const attempt = (step: () => void) => {
    try {
      step();
    } catch (e) {
      failures.push(e);
    }
  };
  attempt(() => munmap(region.address, region.size));
  attempt(() => close(region.fd));
  // Each name only while it still refers to the object we mapped: the temporary one if the
  // region was never placed (or its removal failed), and its own.
  for (const name of region.pendingName === null ? [region.name] : [region.pendingName, region.name]) {
    attempt(() => {
      const current = lstatSync(SHM_DIRECTORY + name, { bigint: true, throwIfNoEntry: false });
      if (current !== undefined && current.ino === region.ino) shmUnlink(name);
    });
  }
  if (failures.length > 0) throw failures[0];
}
