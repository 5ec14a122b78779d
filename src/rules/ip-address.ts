// IP address text: parsing and one canonical form, so that a clock record keyed by the sender's
// address matches the same address typed into a timing peer list. Pure: the control parser, the
// command line and the PTP ingress share it.
//   IPv4: dotted quad without leading zeros ("10.0.0.5").
//   IPv6: RFC 5952 (lower case, longest zero run compressed, no zone), except that an
//         IPv4-mapped address (::ffff:a.b.c.d, as a dual-stack socket reports IPv4 senders)
//         becomes the plain IPv4 text.

export type AddressFamily = 4 | 6;

export interface ParsedAddress {
  family: AddressFamily;
  /** Canonical text, the key of clock records. */
  text: string;
  isLoopback: boolean;
}

const IPV4_PART = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;

function parseIPv4Octets(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const octets: number[] = [];
  for (const part of parts) {
    if (!IPV4_PART.test(part)) return null;
    octets.push(Number(part));
  }
  return octets;
}

/** Parses IPv6 text (optionally with an embedded IPv4 tail and a %zone) into 8 groups. */
function parseIPv6Groups(text: string): number[] | null {
  const zoneAt = text.indexOf("%");
  if (zoneAt === 0) return null;
  if (zoneAt > 0) {
    const zone = text.slice(zoneAt + 1);
    if (!/^[A-Za-z0-9_.-]{1,32}$/.test(zone)) return null;
    text = text.slice(0, zoneAt);
  }
  // An embedded IPv4 tail ("::ffff:1.2.3.4", RFC 4291 2.2 form 3) becomes two hex groups.
  const lastColon = text.lastIndexOf(":");
  if (lastColon >= 0 && text.includes(".", lastColon)) {
    const v4 = parseIPv4Octets(text.slice(lastColon + 1));
    if (!v4) return null;
    const high = ((v4[0]! << 8) | v4[1]!).toString(16);
    const low = ((v4[2]! << 8) | v4[3]!).toString(16);
    text = `${text.slice(0, lastColon + 1)}${high}:${low}`;
  }
  const doubleColon = text.indexOf("::");
  if (doubleColon !== text.lastIndexOf("::")) return null;
  const toGroups = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  if (doubleColon >= 0) {
    const head = toGroups(text.slice(0, doubleColon));
    const after = toGroups(text.slice(doubleColon + 2));
    if (!head || !after) return null;
    const missing = 8 - head.length - after.length;
    if (missing < 1) return null;
    groups = [...head, ...new Array<number>(missing).fill(0), ...after];
  } else {
    const all = toGroups(text);
    if (!all) return null;
    groups = all;
  }
  return groups.length === 8 ? groups : null;
}

function formatIPv6(groups: number[]): string {
  // RFC 5952 4.2: compress the longest run (>= 2) of zero groups, the first if tied.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  const head = hex.slice(0, bestStart).join(":");
  const tail = hex.slice(bestStart + bestLength).join(":");
  return `${head}::${tail}`;
}

/** Parses an address typed by a person or sent by a client; null when it is not an IP address. */
export function parseAddress(input: string): ParsedAddress | null {
  const text = input.trim();
  if (text.length === 0 || text.length > 64) return null;
  if (!text.includes(":")) {
    const octets = parseIPv4Octets(text);
    if (!octets) return null;
    return { family: 4, text: octets.join("."), isLoopback: octets[0] === 127 };
  }
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const groups = parseIPv6Groups(bare);
  if (!groups) return null;
  const isMapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (isMapped) {
    const octets = [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff];
    return { family: 4, text: octets.join("."), isLoopback: octets[0] === 127 };
  }
  const isLoopback = groups.slice(0, 7).every((g) => g === 0) && groups[7] === 1;
  return { family: 6, text: formatIPv6(groups), isLoopback };
}

/**
 * The canonical text of a sender address reported by a socket. Sockets report valid addresses,
 * so this only falls back to the raw text (lower-cased) if parsing ever disagrees.
 */
export function canonicalSender(address: string): string {
  return parseAddress(address)?.text ?? address.toLowerCase();
}
