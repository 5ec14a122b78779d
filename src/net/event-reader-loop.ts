// The event-port reader, Worker side: blocks in poll() on the event sockets (with --interface,
// one interface's event and general sockets: each datagram says which socket it came from) and
// an eventfd, reads each datagram with recvmsg() and its kernel receive time from the
// SCM_TIMESTAMPNS control message, converts the time to the local clock at once, and posts the
// datagrams to the main thread. Nothing the main thread does (GC pauses, a busy CPU, a flood on another port) can
// change a stamp: the kernel took it when the packet arrived. See event-reader.ts for why.
//
// This thread runs nothing else: while it sits in poll() its own event loop does not turn, so it
// takes no messages after the start message; the main thread stops it through the eventfd.

import { allocateNative, type NativeBuffer } from "../sys/libc.ts";
import { MSG_CTRUNC, POLLERR, POLLIN, POLLNVAL, SOCKET_ABI } from "../sys/linux.ts";
import { close, pollDescriptors, receiveMessage } from "../sys/posix.ts";
import { readClock } from "../time/clocks.ts";
import { OWNER, SHARED_SLOTS, type EventReaderMessage, type EventReaderStart, type ReceivedDatagram } from "./event-reader-protocol.ts";
import { kernelStampToLocal } from "./kernel-stamps.ts";
import { decodeSockaddr, timestampFromControl } from "./timestamps.ts";

const DATAGRAM_BYTES = 2048;
/** Room for SCM_TIMESTAMPNS (32 bytes) and anything else the kernel adds. */
export const CONTROL_BYTES = 256;
/** Datagrams read from one socket before looking at the others (and posting). */
const BURST = 64;

const M = SOCKET_ABI.msghdr;
const IOV = SOCKET_ABI.iovec;
const PFD = SOCKET_ABI.pollfd;

/** The buffers one recvmsg() fills. They live as long as the loop: the msghdr points into them. */
interface ReceiveBuffers {
  msghdr: NativeBuffer;
  iovec: NativeBuffer;
  name: NativeBuffer;
  control: NativeBuffer;
  data: NativeBuffer;
  dataBytes: Uint8Array;
}

function receiveBuffers(): ReceiveBuffers {
  const buffers = {
    msghdr: allocateNative(M.size),
    iovec: allocateNative(IOV.size),
    name: allocateNative(SOCKET_ABI.sockaddrIn6.size + 4),
    control: allocateNative(CONTROL_BYTES),
    data: allocateNative(DATAGRAM_BYTES),
  };
  buffers.iovec.view.setBigUint64(IOV.base, BigInt(buffers.data.address), true);
  buffers.iovec.view.setBigUint64(IOV.length, BigInt(DATAGRAM_BYTES), true);
  const m = buffers.msghdr.view;
  m.setBigUint64(M.name, BigInt(buffers.name.address), true);
  m.setBigUint64(M.iov, BigInt(buffers.iovec.address), true);
  m.setBigUint64(M.iovLength, 1n, true);
  m.setBigUint64(M.control, BigInt(buffers.control.address), true);
  return { ...buffers, dataBytes: new Uint8Array(buffers.data.buffer) };
}

/** Reads one datagram from socket number `socket` (an index into start.fds); null when none is waiting. */
function receiveOne(socket: number, b: ReceiveBuffers, start: EventReaderStart): ReceivedDatagram | null {
  const fd = start.fds[socket]!;
  const m = b.msghdr.view;
  // recvmsg writes back how much of the name and control buffers it used: reset both each time.
  m.setUint32(M.nameLength, SOCKET_ABI.sockaddrIn6.size + 4, true);
  m.setBigUint64(M.controlLength, BigInt(CONTROL_BYTES), true);
  m.setInt32(M.flags, 0, true);
  const length = receiveMessage(fd, b.msghdr.address);
  if (length === null) return null;
  const flags = m.getInt32(M.flags, true);
  const controlLength = Number(m.getBigUint64(M.controlLength, true));
  const stamp = (flags & MSG_CTRUNC) === 0 ? timestampFromControl(b.control.view, controlLength) : null;
  const receivedAtNs = stamp !== null ? kernelStampToLocal(stamp, start.localClock) : readClock(start.localClock);
  const sender = decodeSockaddr(b.name.view, m.getUint32(M.nameLength, true)) ?? { address: "", port: 0 };
  return {
    socket,
    data: b.dataBytes.slice(0, Math.min(length, DATAGRAM_BYTES)),
    port: sender.port,
    address: sender.address,
    receivedAtNs,
    kernelStamp: stamp !== null,
  };
}

/**
 * Runs until the eventfd is signalled (or every socket failed), then closes the sockets and
 * marks them closed in the shared `owner` slot. Returns at once if the main thread reclaimed
 * the sockets before we started. `post` is the Worker's postMessage.
 */
export function runEventReader(start: EventReaderStart, post: (message: EventReaderMessage) => void): void {
  const shared = new Int32Array(start.shared);
  if (Atomics.compareExchange(shared, SHARED_SLOTS.owner, OWNER.main, OWNER.worker) !== OWNER.main) return;
  const buffers = receiveBuffers();
  const descriptors = [start.wakeFd, ...start.fds];
  const pollfds = allocateNative(PFD.size * descriptors.length);
  descriptors.forEach((fd, i) => {
    pollfds.view.setInt32(i * PFD.size + PFD.fd, fd, true);
    pollfds.view.setInt16(i * PFD.size + PFD.events, POLLIN, true);
  });
  const failed = new Set<number>();
  let dropped = 0;
  post({ kind: "ready" });
  try {
    for (;;) {
      for (let i = 0; i < descriptors.length; i++) pollfds.view.setInt16(i * PFD.size + PFD.revents, 0, true);
      if (pollDescriptors(pollfds, descriptors.length, -1) === 0) continue;
      if (pollfds.view.getInt16(PFD.revents, true) !== 0) return;
      const batch: ReceivedDatagram[] = [];
      for (let i = 1; i < descriptors.length; i++) {
        const fd = descriptors[i]!;
        const revents = pollfds.view.getInt16(i * PFD.size + PFD.revents, true);
        if (revents === 0 || failed.has(fd)) continue;
        if ((revents & POLLNVAL) !== 0) {
          stopPolling(i, fd, "the socket was closed under the reader");
          continue;
        }
        if ((revents & (POLLIN | POLLERR)) === 0) continue;
        try {
          for (let n = 0; n < BURST; n++) {
            const datagram = receiveOne(i - 1, buffers, start);
            if (datagram === null) break;
            const backlog = Atomics.load(shared, SHARED_SLOTS.posted) + batch.length - Atomics.load(shared, SHARED_SLOTS.handled);
            if (backlog >= start.maxBacklog) dropped++;
            else batch.push(datagram);
          }
        } catch (error) {
          // An error queued on the socket (recvmsg answers it once); report it and go on.
          post({ kind: "error", message: (error as Error).message });
        }
      }
      if (batch.length > 0 || dropped > 0) {
        Atomics.add(shared, SHARED_SLOTS.posted, batch.length);
        post({ kind: "datagrams", datagrams: batch, dropped });
        dropped = 0;
      }
      if (failed.size === start.fds.length) return;
    }
  } finally {
    for (const fd of start.fds) {
      try {
        close(fd);
      } catch {
        // already closed
      }
    }
    Atomics.store(shared, SHARED_SLOTS.owner, OWNER.closed);
    Atomics.notify(shared, SHARED_SLOTS.owner);
  }

  function stopPolling(index: number, fd: number, why: string): void {
    failed.add(fd);
    // A negative fd is ignored by poll().
    pollfds.view.setInt32(index * PFD.size + PFD.fd, -1, true);
    post({ kind: "error", message: `event socket ${fd}: ${why}` });
  }
}
