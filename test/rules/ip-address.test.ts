import { describe, expect, test } from "bun:test";
import { canonicalSender, parseAddress } from "../../src/rules/ip-address.ts";

describe("parseAddress", () => {
  test.each([
    ["10.0.0.5", "10.0.0.5", 4],
    [" 192.168.1.7 ", "192.168.1.7", 4],
    ["127.0.0.1", "127.0.0.1", 4],
    ["FE80::1", "fe80::1", 6],
    ["fe80:0:0:0:0:0:0:1", "fe80::1", 6],
    ["fe80::1%eth0", "fe80::1", 6],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", 6],
    ["2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1", 6],
    ["::", "::", 6],
    ["::1", "::1", 6],
    ["[::1]", "::1", 6],
    ["::ffff:10.0.0.5", "10.0.0.5", 4],
    ["::FFFF:0a00:0005", "10.0.0.5", 4],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221", 6],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8", 6],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3", 6],
  ] as const)("%s → %s", (input, text, family) => {
    const parsed = parseAddress(input);
    expect(parsed).not.toBeNull();
    expect(parsed!.text).toBe(text);
    expect(parsed!.family).toBe(family);
  });

  test.each([
    "",
    "10.0.0",
    "10.0.0.256",
    "10.0.0.05",
    "10.0.0.5.6",
    "a.b.c.d",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    "12345::1",
    "fe80::1%",
    "%eth0",
    "::g",
    "localhost",
    "10.0.0.5;rm -rf /",
    "x".repeat(100),
  ])("rejects %j", (input) => {
    expect(parseAddress(input)).toBeNull();
  });

  test("loopback is recognised in both families", () => {
    expect(parseAddress("127.1.2.3")!.isLoopback).toBe(true);
    expect(parseAddress("::1")!.isLoopback).toBe(true);
    expect(parseAddress("::ffff:127.0.0.1")!.isLoopback).toBe(true);
    expect(parseAddress("10.0.0.1")!.isLoopback).toBe(false);
  });

  test("a dual-stack sender and a typed peer address give the same key", () => {
    expect(canonicalSender("::ffff:192.168.1.20")).toBe(parseAddress("192.168.1.20")!.text);
    expect(canonicalSender("FE80::ABCD")).toBe(parseAddress("fe80::abcd")!.text);
  });
});
