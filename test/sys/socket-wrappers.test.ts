// The socket wrappers --interface added to src/sys/posix.ts: SO_BINDTODEVICE and sendto() from a
// libc socket, against this host's kernel; and the probe for SO_TIMESTAMPNS
// (src/net/timestamped-socket.ts).

import { expect, test } from "bun:test";
import { timestampOptionRefusal } from "../../src/net/timestamped-socket.ts";
import { addressBytes, encodeSockaddr } from "../../src/net/timestamps.ts";
import { allocateNative } from "../../src/sys/libc.ts";
import { AF_INET, SOCKET_ABI } from "../../src/sys/linux.ts";
import { MAX_SENT_DATAGRAM, SysError, bindToDevice, close, sendDatagram, udpSocket } from "../../src/sys/posix.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";

const cleanups = cleanupAfterEach();

function socket(): number {
  const fd = udpSocket(AF_INET);
  cleanups.push(() => close(fd));
  return fd;
}

const refusal = (run: () => void): SysError => {
  try {
    run();
  } catch (error) {
    if (error instanceof SysError) return error;
    throw error;
  }
  throw new Error("not refused");
};

test("bindToDevice: an interface that exists; ENODEV for one that does not; EINVAL for a name the kernel cannot hold", () => {
  bindToDevice(socket(), "lo");
  const missing = refusal(() => bindToDevice(socket(), "nqptp-none0"));
  expect([missing.call, missing.code]).toEqual(["setsockopt", "ENODEV"]);
  expect(missing.message).toContain('SO_BINDTODEVICE "nqptp-none0"');
  expect(refusal(() => bindToDevice(socket(), "x".repeat(16))).code).toBe("EINVAL");
  expect(refusal(() => bindToDevice(socket(), "")).code).toBe("EINVAL");
});

test("sendDatagram: the bytes arrive; too long is EINVAL, no socket EBADF", async () => {
  const received: number[][] = [];
  const receiver = await Bun.udpSocket({
    hostname: "127.0.0.1",
    socket: {
      data: (_s, data) => {
        received.push([...data]);
      },
    },
  });
  cleanups.push(() => receiver.close());
  const address = allocateNative(SOCKET_ABI.sockaddrIn6.size);
  const target = addressBytes("127.0.0.1")!;
  const length = encodeSockaddr(address.view, target.family, target.bytes, receiver.port);
  const fd = socket();
  sendDatagram(fd, new Uint8Array([1, 2, 3]), address, length, "127.0.0.1");
  const deadline = Date.now() + 2000;
  while (received.length === 0 && Date.now() < deadline) await Bun.sleep(5);
  expect(received).toEqual([[1, 2, 3]]);
  expect(refusal(() => sendDatagram(fd, new Uint8Array(MAX_SENT_DATAGRAM + 1), address, length, "x")).code).toBe("EINVAL");
  expect(refusal(() => sendDatagram(-1, new Uint8Array([1]), address, length, "x")).code).toBe("EBADF");
});

test("this kernel gives per-datagram receive stamps: the probe finds SO_TIMESTAMPNS accepted", () => {
  // qemu-user refuses it (test/e2e/arm64.test.ts runs that case through the daemon).
  expect(timestampOptionRefusal()).toBeNull();
});
